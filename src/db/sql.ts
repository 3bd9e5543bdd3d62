/** Quote an identifier for DDL. Names reaching here are already validated; quoting is the second guard. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quote a string literal (standard_conforming_strings is on in every supported server). */
export function literal(value: string): string {
  if (value.includes('\u0000')) throw new Error('NUL byte in SQL literal');
  return `'${value.replace(/'/g, "''")}'`;
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}
