// Database URL helpers without the drivers: the CLI's light paths (secrets, config dump) use them.

export function isEmbeddedUrl(url: string): boolean {
  return url.startsWith('pglite://') || url.startsWith('memory://');
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and `config dump`. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/([?&](?:password|passwd|sslpassword)=)[^&#]*/gi, '$1***');
}

/** Percent-encode a URL user name or password, `!'()*` too (a `'` would end the shell quotes around a printed URL). */
export function encodeUserinfo(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The URL `user` logs in with on the server and database of `ownerUrl`: the owner URL's host, port,
 * database and query parameters (sslmode, application_name, host=/socket/dir, …) kept as written,
 * with the user name and password replaced by these (percent-encoded). `user` and `password` query
 * parameters are dropped: they would override the login. `database` fills in a URL that names no
 * database (the driver would otherwise take the user name as the database). Undefined when
 * `ownerUrl` is not a postgres:// URL.
 */
export function loginUrl(ownerUrl: string, user: string, password: string, database?: string): string | undefined {
  const m = /^(postgres(?:ql)?:)\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(ownerUrl);
  if (!m) return undefined;
  const [, scheme, authority = '', rawPath = '', rawQuery = ''] = m;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const path = rawPath.length > 1 ? rawPath : database ? `/${encodeURIComponent(database)}` : rawPath;
  const params = rawQuery
    .slice(1)
    .split('&')
    .filter((p) => p.length > 0)
    .filter((p) => {
      const key = p.split('=')[0] ?? '';
      let name = key;
      try {
        name = decodeURIComponent(key.replace(/\+/g, ' '));
      } catch {
        // not percent-encoded text: compare as written
      }
      return name !== 'user' && name !== 'password';
    });
  return `${scheme}//${encodeUserinfo(user)}:${encodeUserinfo(password)}@${hostPort}${path}${params.length ? `?${params.join('&')}` : ''}`;
}
