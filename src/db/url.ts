// Database URL helpers without the drivers: the CLI's light paths (secrets, config dump) use them.

export function isEmbeddedUrl(url: string): boolean {
  return url.startsWith('pglite://') || url.startsWith('memory://');
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and `config dump`. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/([?&](?:password|passwd|sslpassword)=)[^&#]*/gi, '$1***');
}
