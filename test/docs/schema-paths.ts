/**
 * Every key path of a zod 4 schema, as docs/configuration.md writes them: dotted keys, `[]` for
 * the items of an array (`datasets[].name`), `<>` for the keys of a record
 * (`database.placements.<>.url_env`; the docs write a name inside, `<name>`).
 */
import type { z } from 'zod';

export interface SchemaPath {
  path: string;
  /** No keys below it: a value the user writes (an array of scalars is a leaf too). */
  leaf: boolean;
  /** The schema's own default at this key (`.default(...)`), if it has one. */
  default?: { value: unknown };
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
  defaultValue?: unknown;
}

const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Strip wrappers (default, optional, nullable, …), keeping the outermost default. */
export function unwrap(s: z.ZodType): { inner: z.ZodType; default?: { value: unknown } } {
  let inner = s;
  let found: { value: unknown } | undefined;
  for (;;) {
    const d = def(inner);
    if (d.type === 'default' || d.type === 'prefault') {
      found ??= { value: d.defaultValue };
      inner = d.innerType!;
    } else if (d.type === 'optional' || d.type === 'nullable' || d.type === 'readonly' || d.type === 'catch' || d.type === 'nonoptional') {
      inner = d.innerType!;
    } else if (d.type === 'pipe') {
      inner = d.in!;
    } else {
      return found ? { inner, default: found } : { inner };
    }
  }
}

const hasKeys = (s: z.ZodType): boolean => ['object', 'record', 'array'].includes(def(unwrap(s).inner).type) && !isScalarArray(s);
function isScalarArray(s: z.ZodType): boolean {
  const d = def(unwrap(s).inner);
  return d.type === 'array' && !['object', 'record', 'array'].includes(def(unwrap(d.element!).inner).type);
}

/** Every key path below `schema` (not `schema` itself), parents before children. */
export function schemaPaths(schema: z.ZodType, prefix = ''): SchemaPath[] {
  const out: SchemaPath[] = [];
  const visit = (s: z.ZodType, path: string, sep: string) => {
    const d = def(unwrap(s).inner);
    if (d.type === 'object') {
      for (const [k, child] of Object.entries(d.shape!)) add(child, `${path}${sep}${k}`);
    } else if (d.type === 'record') {
      add(d.valueType!, `${path}${sep}<>`);
    } else if (d.type === 'array') {
      visit(d.element!, `${path}[]`, '.');
    }
  };
  const add = (s: z.ZodType, path: string) => {
    const u = unwrap(s);
    out.push({ path, leaf: !hasKeys(s), ...(u.default ? { default: u.default } : {}) });
    if (hasKeys(s)) visit(s, path, '.');
  };
  visit(schema, prefix, prefix ? '.' : '');
  return out;
}

/** The schema at a path of `schemaPaths` (`<>` and `[]` step into records and arrays). */
export function schemaAt(schema: z.ZodType, path: string): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const part of path.split('.')) {
    const m = /^(.*?)((?:\[\])*)$/.exec(part)!;
    const key = m[1]!;
    const d: Def = def(unwrap(s!).inner);
    s = key === '<>' ? (d.type === 'record' ? d.valueType : undefined) : d.type === 'object' ? d.shape![key] : undefined;
    for (let i = 0; s && i < m[2]!.length / 2; i++) {
      const a = def(unwrap(s).inner);
      s = a.type === 'array' ? a.element : undefined;
    }
    if (!s) return undefined;
  }
  return s;
}
