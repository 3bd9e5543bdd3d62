/**
 * Hostile SQL at the HTTP SQL endpoint (SPEC §4 `POST /v1/queries`; DESIGN "Enforcement model"
 * point 5): acme_corp sends statements that try to reach settings, roles, catalogs, files,
 * other sessions, other statements, the tenantgate catalog, or another tenant's rows. Each must
 * be refused by the planner, before the database sees it: HTTP 400 `SQL_FORBIDDEN` (or
 * `SQL_SYNTAX` where the text is not one PostgreSQL statement), or 403 `POLICY_DENIED` for a
 * write sent with a read key. Whatever the answer, no globex_inc row (canary) and no raw masked
 * value may appear, and the owner's view of the data must be unchanged at the end.
 *
 * Every statement is sent with acme_corp's reader key and with its writer key (the writer's
 * planner scope allows INSERT/UPDATE/DELETE, so the read-path refusals must not depend on it).
 *
 * ALLOWED_BUT_HARMLESS lists statements that look hostile but are legitimate single SELECTs over
 * the dataset (literals that merely mention another tenant, ORs that cannot widen the tenant
 * predicate, ...): they run, and are checked to answer only acme_corp's rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { leakInRows, ownerSnapshot, seedCanaries } from './canary.ts';
import { serve, type Served } from './support.ts';

type Refusal = 'SQL_FORBIDDEN' | 'SQL_SYNTAX';

/**
 * `U&"order)+000073" UESCAPE ')'` is the identifier `orders` spelled with a Unicode escape
 * (escape character `)`, `)+000073` = "s"). The planner's splice assumes the name's token is
 * `orders` (6 characters) or `"orders"`, so it replaces only `U&"ord`: the leftover `er)+000073"`
 * flips the quote parity of the rest of the text, and the text of the quoted column alias that
 * the allowlist saw as a name becomes SQL the database runs, unchecked.
 */
const unicodeEscapeSmuggle = (payload: string) => `SELECT (SELECT count(*) FROM U&"order)+000073" UESCAPE ')' z) AS ", ${payload} AS" -- "`;

/** Read-path statements: refused for the reader and for the writer alike. [label, sql, code] */
const READ_PATH: Array<[string, string, Refusal]> = [
  // settings, roles, session
  ['SET ROLE', 'SET ROLE postgres', 'SQL_FORBIDDEN'],
  ['SET tenantgate.tenant', "SET tenantgate.tenant = 'globex_inc'", 'SQL_FORBIDDEN'],
  ['SET LOCAL tenantgate.tenant', "SET LOCAL tenantgate.tenant TO 'globex_inc'", 'SQL_FORBIDDEN'],
  ['SET tenantgate.mac', "SET tenantgate.mac = 'x'", 'SQL_FORBIDDEN'],
  ['SET search_path', 'SET search_path = pg_catalog, public', 'SQL_FORBIDDEN'],
  ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION postgres', 'SQL_FORBIDDEN'],
  ['SET TRANSACTION READ WRITE', 'SET TRANSACTION READ WRITE', 'SQL_FORBIDDEN'],
  ['RESET ROLE', 'RESET ROLE', 'SQL_FORBIDDEN'],
  ['RESET ALL', 'RESET ALL', 'SQL_FORBIDDEN'],
  ['SHOW setting', 'SHOW tenantgate.tenant', 'SQL_FORBIDDEN'],
  ['SHOW ALL', 'SHOW ALL', 'SQL_FORBIDDEN'],
  ['set_config tenant', "SELECT set_config('tenantgate.tenant', 'globex_inc', true)", 'SQL_FORBIDDEN'],
  ['set_config role beside a dataset read', "SELECT set_config('role', 'postgres', false), region FROM orders", 'SQL_FORBIDDEN'],
  ['pg_catalog.set_config', "SELECT pg_catalog.set_config('search_path', 'public', true)", 'SQL_FORBIDDEN'],
  ['current_setting', "SELECT current_setting('tenantgate.tenant')", 'SQL_FORBIDDEN'],
  ['current_setting in WHERE', "SELECT region FROM orders WHERE tenant_id = current_setting('tenantgate.tenant', true)", 'SQL_FORBIDDEN'],
  ['current_user', 'SELECT current_user', 'SQL_FORBIDDEN'],
  ['session_user', 'SELECT session_user', 'SQL_FORBIDDEN'],
  ['current_role', 'SELECT current_role', 'SQL_FORBIDDEN'],
  ['user', 'SELECT user', 'SQL_FORBIDDEN'],
  ['current_schema', 'SELECT current_schema', 'SQL_FORBIDDEN'],
  ['current_user inside format', "SELECT format('%s', current_user) FROM orders", 'SQL_FORBIDDEN'],
  // server functions
  ['pg_sleep', 'SELECT pg_sleep(10)', 'SQL_FORBIDDEN'],
  ['pg_catalog.pg_sleep', 'SELECT pg_catalog.pg_sleep(10)', 'SQL_FORBIDDEN'],
  ['pg_read_file', "SELECT pg_read_file('/etc/passwd')", 'SQL_FORBIDDEN'],
  ['pg_ls_dir', "SELECT pg_ls_dir('.')", 'SQL_FORBIDDEN'],
  ['pg_terminate_backend', 'SELECT pg_terminate_backend(pg_backend_pid())', 'SQL_FORBIDDEN'],
  ['pg_advisory_lock', 'SELECT pg_advisory_lock(42)', 'SQL_FORBIDDEN'],
  ['pg_notify', "SELECT pg_notify('tenantgate', 'x')", 'SQL_FORBIDDEN'],
  ['version', 'SELECT version()', 'SQL_FORBIDDEN'],
  ['has_table_privilege', "SELECT has_table_privilege('orders', 'select')", 'SQL_FORBIDDEN'],
  ['txid_current', 'SELECT txid_current()', 'SQL_FORBIDDEN'],
  // catalogs
  ['pg_catalog.pg_class', 'SELECT relname FROM pg_catalog.pg_class', 'SQL_FORBIDDEN'],
  ['pg_class', 'SELECT relname, reltuples FROM pg_class', 'SQL_FORBIDDEN'],
  ['pg_roles', 'SELECT rolname, rolsuper FROM pg_roles', 'SQL_FORBIDDEN'],
  ['pg_stats', "SELECT most_common_vals FROM pg_stats WHERE tablename = 'orders'", 'SQL_FORBIDDEN'],
  ['pg_stat_activity', 'SELECT query FROM pg_stat_activity', 'SQL_FORBIDDEN'],
  ['pg_settings in a subquery', "SELECT (SELECT setting FROM pg_settings WHERE name = 'search_path')", 'SQL_FORBIDDEN'],
  ['TABLE pg_roles', 'TABLE pg_roles', 'SQL_FORBIDDEN'],
  ['information_schema.tables', 'SELECT table_name FROM information_schema.tables', 'SQL_FORBIDDEN'],
  ['information_schema.columns', "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'", 'SQL_FORBIDDEN'],
  ['catalog in UNION', 'SELECT region FROM orders UNION SELECT rolname FROM pg_roles', 'SQL_FORBIDDEN'],
  ['catalog in EXISTS', 'SELECT region FROM orders WHERE EXISTS (SELECT 1 FROM pg_authid)', 'SQL_FORBIDDEN'],
  ['catalog in LATERAL', 'SELECT o.region, p.proname FROM orders o JOIN LATERAL (SELECT proname FROM pg_proc) p ON true', 'SQL_FORBIDDEN'],
  ['catalog in a JOIN', 'SELECT * FROM orders NATURAL JOIN pg_user', 'SQL_FORBIDDEN'],
  // tenantgate's own catalog
  ['tenantgate.api_keys', 'SELECT * FROM tenantgate.api_keys', 'SQL_FORBIDDEN'],
  ['tenantgate.context_key', 'SELECT k_ipad, k_opad FROM tenantgate.context_key', 'SQL_FORBIDDEN'],
  ['tenantgate.tenants', 'SELECT id, attributes FROM tenantgate.tenants', 'SQL_FORBIDDEN'],
  ['tenantgate.lookup_key', "SELECT * FROM tenantgate.lookup_key('x')", 'SQL_FORBIDDEN'],
  ['tenantgate.lookup_key in the select list', "SELECT tenantgate.lookup_key('x')", 'SQL_FORBIDDEN'],
  ['tenantgate.gateway_tenant()', 'SELECT tenantgate.gateway_tenant()', 'SQL_FORBIDDEN'],
  ['gateway_tenant() in WHERE', 'SELECT region FROM orders WHERE tenant_id = tenantgate.gateway_tenant()', 'SQL_FORBIDDEN'],
  // SQL from a string, files, other databases
  ['dblink', "SELECT * FROM dblink('dbname=postgres', 'SELECT tenant_id FROM public.orders') AS t(tenant_id text)", 'SQL_FORBIDDEN'],
  ['dblink_exec', "SELECT dblink_exec('dbname=postgres', 'DELETE FROM public.orders')", 'SQL_FORBIDDEN'],
  ['lo_import', "SELECT lo_import('/etc/passwd')", 'SQL_FORBIDDEN'],
  ['lo_export', "SELECT lo_export(1234, '/tmp/tenantgate-lo')", 'SQL_FORBIDDEN'],
  ['query_to_xml', "SELECT query_to_xml('SELECT * FROM public.orders', true, true, '')", 'SQL_FORBIDDEN'],
  ['xpath', "SELECT xpath('/a/text()', '<a>x</a>')", 'SQL_FORBIDDEN'],
  ['xml cast', "SELECT '<a/>'::xml", 'SQL_FORBIDDEN'],
  ['COPY TO STDOUT', 'COPY orders TO STDOUT', 'SQL_FORBIDDEN'],
  ['COPY (query) TO STDOUT', 'COPY (SELECT * FROM orders) TO STDOUT', 'SQL_FORBIDDEN'],
  ['COPY TO PROGRAM', "COPY orders TO PROGRAM 'cat > /tmp/tenantgate-orders'", 'SQL_FORBIDDEN'],
  ['COPY FROM PROGRAM', "COPY orders FROM PROGRAM 'id'", 'SQL_FORBIDDEN'],
  ['COPY TO file', "COPY (SELECT * FROM orders) TO '/tmp/tenantgate-orders.csv'", 'SQL_FORBIDDEN'],
  ['EXPLAIN', 'EXPLAIN SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['EXPLAIN ANALYZE', 'EXPLAIN ANALYZE SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['DO block', "DO $$ BEGIN PERFORM set_config('tenantgate.tenant', 'globex_inc', false); END $$", 'SQL_FORBIDDEN'],
  ['CALL', 'CALL do_something()', 'SQL_FORBIDDEN'],
  ['PREPARE', 'PREPARE p AS SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['EXECUTE', 'EXECUTE p', 'SQL_FORBIDDEN'],
  ['DEALLOCATE', 'DEALLOCATE ALL', 'SQL_FORBIDDEN'],
  ['DECLARE CURSOR', 'DECLARE c CURSOR FOR SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['FETCH', 'FETCH ALL FROM c', 'SQL_FORBIDDEN'],
  // locks, notifications
  ['LOCK', 'LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', 'SQL_FORBIDDEN'],
  ['LISTEN', 'LISTEN tenantgate', 'SQL_FORBIDDEN'],
  ['NOTIFY', "NOTIFY tenantgate, 'x'", 'SQL_FORBIDDEN'],
  ['UNLISTEN', 'UNLISTEN *', 'SQL_FORBIDDEN'],
  ['FOR UPDATE', 'SELECT * FROM orders FOR UPDATE', 'SQL_FORBIDDEN'],
  ['FOR SHARE', 'SELECT * FROM orders FOR SHARE', 'SQL_FORBIDDEN'],
  ['FOR NO KEY UPDATE', 'SELECT id FROM orders FOR NO KEY UPDATE', 'SQL_FORBIDDEN'],
  ['FOR KEY SHARE SKIP LOCKED', 'SELECT id FROM orders FOR KEY SHARE SKIP LOCKED', 'SQL_FORBIDDEN'],
  ['FOR UPDATE in a subquery', 'SELECT * FROM (SELECT id FROM orders FOR UPDATE) s', 'SQL_FORBIDDEN'],
  ['FOR UPDATE in a CTE', 'WITH l AS (SELECT id FROM orders FOR UPDATE NOWAIT) SELECT count(*) FROM l', 'SQL_FORBIDDEN'],
  // data-modifying CTEs on the read path
  ['WITH (DELETE) SELECT', 'WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x', 'SQL_FORBIDDEN'],
  ['WITH (UPDATE tenant_id) SELECT', "WITH x AS (UPDATE orders SET tenant_id = 'globex_inc' RETURNING id) SELECT count(*) FROM x", 'SQL_FORBIDDEN'],
  ['WITH (INSERT) SELECT', "WITH x AS (INSERT INTO orders (region, amount) VALUES ('X', 1) RETURNING id) SELECT * FROM x", 'SQL_FORBIDDEN'],
  ['nested WITH (DELETE)', 'SELECT * FROM (WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x) s', 'SQL_FORBIDDEN'],
  // sequences
  ['nextval', "SELECT nextval('orders_id_seq')", 'SQL_FORBIDDEN'],
  ['setval', "SELECT setval('orders_id_seq', 1)", 'SQL_FORBIDDEN'],
  ['currval', "SELECT currval('orders_id_seq')", 'SQL_FORBIDDEN'],
  ['lastval', 'SELECT lastval()', 'SQL_FORBIDDEN'],
  // DDL, privileges, maintenance, transaction control
  ['CREATE TABLE', 'CREATE TABLE evil (x int)', 'SQL_FORBIDDEN'],
  ['CREATE TEMP TABLE shadowing the dataset', 'CREATE TEMP TABLE orders AS SELECT 1 AS id', 'SQL_FORBIDDEN'],
  ['CREATE FUNCTION', "CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'", 'SQL_FORBIDDEN'],
  ['CREATE VIEW', 'CREATE VIEW evil AS SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['CREATE EXTENSION', 'CREATE EXTENSION dblink', 'SQL_FORBIDDEN'],
  ['DROP TABLE', 'DROP TABLE orders', 'SQL_FORBIDDEN'],
  ['DROP POLICY', 'DROP POLICY IF EXISTS p ON orders', 'SQL_FORBIDDEN'],
  ['ALTER TABLE', 'ALTER TABLE orders DISABLE ROW LEVEL SECURITY', 'SQL_FORBIDDEN'],
  ['ALTER ROLE', "ALTER ROLE postgres PASSWORD 'x'", 'SQL_FORBIDDEN'],
  ['ALTER SYSTEM', "ALTER SYSTEM SET row_security = 'off'", 'SQL_FORBIDDEN'],
  ['TRUNCATE', 'TRUNCATE orders', 'SQL_FORBIDDEN'],
  ['GRANT', 'GRANT SELECT ON orders TO PUBLIC', 'SQL_FORBIDDEN'],
  ['REVOKE', 'REVOKE ALL ON orders FROM PUBLIC', 'SQL_FORBIDDEN'],
  ['COMMENT ON', "COMMENT ON TABLE orders IS 'x'", 'SQL_FORBIDDEN'],
  ['VACUUM', 'VACUUM orders', 'SQL_FORBIDDEN'],
  ['ANALYZE', 'ANALYZE orders', 'SQL_FORBIDDEN'],
  ['CHECKPOINT', 'CHECKPOINT', 'SQL_FORBIDDEN'],
  ['DISCARD', 'DISCARD ALL', 'SQL_FORBIDDEN'],
  ['BEGIN', 'BEGIN', 'SQL_FORBIDDEN'],
  ['START TRANSACTION READ WRITE', 'START TRANSACTION READ WRITE', 'SQL_FORBIDDEN'],
  ['COMMIT', 'COMMIT', 'SQL_FORBIDDEN'],
  ['ROLLBACK', 'ROLLBACK', 'SQL_FORBIDDEN'],
  ['SAVEPOINT', 'SAVEPOINT s', 'SQL_FORBIDDEN'],
  ['RELEASE SAVEPOINT', 'RELEASE SAVEPOINT s', 'SQL_FORBIDDEN'],
  // more than one statement, comments
  ['two statements', 'SELECT 1; SELECT rolname FROM pg_roles', 'SQL_FORBIDDEN'],
  ['SELECT then SET ROLE', 'SELECT region FROM orders; SET ROLE postgres', 'SQL_FORBIDDEN'],
  ['COMMIT smuggled between statements', "SELECT 1; COMMIT; SET tenantgate.tenant = 'globex_inc'; SELECT * FROM orders", 'SQL_FORBIDDEN'],
  ['dollar-quoted text then a second statement', "SELECT $x$a$x$; SET ROLE postgres", 'SQL_FORBIDDEN'],
  ['block comment before SET', "/* just a comment */ SET ROLE postgres", 'SQL_FORBIDDEN'],
  ['line comment hiding a semicolon', 'SELECT region FROM orders -- harmless\n; DELETE FROM orders', 'SQL_FORBIDDEN'],
  ['block comment around a semicolon', 'SELECT region FROM orders /* ; */ ; SELECT rolname FROM pg_roles', 'SQL_FORBIDDEN'],
  ['comment inside a catalog name position', 'SELECT /* orders */ relname FROM /* orders */ pg_class', 'SQL_FORBIDDEN'],
  ['two writes', "UPDATE orders SET region = 'X'; DELETE FROM orders", 'SQL_FORBIDDEN'],
  ['MERGE', "MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN UPDATE SET tenant_id = 'globex_inc'", 'SQL_FORBIDDEN'],
  ['nested comment', 'SELECT 1 /* a /* b */ ; */ ; SHOW ALL', 'SQL_FORBIDDEN'],
  // names: schema, catalog, CTE named like the dataset, unicode escapes
  ['public.orders', 'SELECT region, tenant_id FROM public.orders', 'SQL_FORBIDDEN'],
  ['"public"."orders"', 'SELECT region, tenant_id FROM "public"."orders"', 'SQL_FORBIDDEN'],
  ['catalog-qualified name', 'SELECT region FROM postgres.public.orders', 'SQL_FORBIDDEN'],
  ['public.orders in a subquery', 'SELECT region FROM orders WHERE id IN (SELECT id FROM public.orders)', 'SQL_FORBIDDEN'],
  ['CTE named like the dataset', 'WITH orders AS (SELECT * FROM public.orders) SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['CTE named like the dataset, with forged rows', "WITH orders AS (SELECT 'globex_inc' AS tenant_id) SELECT * FROM orders", 'SQL_FORBIDDEN'],
  ['quoted CTE named like the dataset', 'WITH "orders" AS (SELECT 1 AS id) SELECT * FROM orders', 'SQL_FORBIDDEN'],
  ['CTE named like the dataset in a subquery', 'SELECT * FROM (WITH orders AS (SELECT 1 AS id) SELECT * FROM orders) s', 'SQL_FORBIDDEN'],
  // A non-recursive CTE's name is not in scope inside its own query: there pg_roles is the catalog.
  ['CTE named like a catalog, reading that catalog', 'WITH pg_roles AS (SELECT rolname, rolsuper FROM pg_roles) SELECT * FROM pg_roles', 'SQL_FORBIDDEN'],
  ['CTE named like a catalog, statistics of every tenant', 'WITH pg_stat_user_tables AS (SELECT relname, n_live_tup, n_tup_ins FROM pg_stat_user_tables) SELECT * FROM pg_stat_user_tables', 'SQL_FORBIDDEN'],
  // A CTE in a subquery is not in scope in the outer query: there pg_class is the catalog.
  ['CTE name used outside its scope', 'SELECT relname, reltuples FROM (WITH pg_class AS (SELECT 1) SELECT 1) s, pg_class', 'SQL_FORBIDDEN'],
  ['unicode-escaped catalog name', 'SELECT rolname FROM U&"pg\\005Froles"', 'SQL_FORBIDDEN'],
  ['unicode-escaped schema', 'SELECT region FROM U&"p\\0075blic".orders', 'SQL_FORBIDDEN'],
  ['unicode-escaped dataset name (planner splice)', 'SELECT region FROM U&"orders" x', 'SQL_FORBIDDEN'],
  ['unicode-escaped dataset name smuggling a raw-table read', unicodeEscapeSmuggle("(SELECT string_agg(region || ':' || tenant_id || ':' || email, ',') FROM public.orders)"), 'SQL_FORBIDDEN'],
  ['unicode-escaped dataset name smuggling SET ROLE and SQL from a string', unicodeEscapeSmuggle("set_config('role', 'postgres', true) AS r, query_to_xml('SELECT tenant_id, region, amount, email FROM public.orders', true, false, '')::text"), 'SQL_FORBIDDEN'],
  // casts, operators, types
  ['regclass cast', "SELECT 'orders'::regclass", 'SQL_FORBIDDEN'],
  ['regproc cast', "SELECT 'pg_sleep'::regproc", 'SQL_FORBIDDEN'],
  ['oid cast', "SELECT 'public.orders'::regclass::oid", 'SQL_FORBIDDEN'],
  ['oid literal cast', 'SELECT 1259::oid', 'SQL_FORBIDDEN'],
  ['regrole cast', "SELECT 'postgres'::regrole", 'SQL_FORBIDDEN'],
  ['CAST AS regnamespace', "SELECT CAST('tenantgate' AS regnamespace)", 'SQL_FORBIDDEN'],
  ['name cast', "SELECT 'x'::name", 'SQL_FORBIDDEN'],
  ['ROW()::record', "SELECT ROW(1, 'globex_inc')::record", 'SQL_FORBIDDEN'],
  ['row of the dataset cast to record', 'SELECT (o.*)::record FROM orders o', 'SQL_FORBIDDEN'],
  ['%TYPE', 'SELECT 1::orders.tenant_id%TYPE', 'SQL_FORBIDDEN'],
  ['OPERATOR(pg_catalog.=)', "SELECT region FROM orders WHERE tenant_id OPERATOR(pg_catalog.=) 'globex_inc'", 'SQL_FORBIDDEN'],
  ['OPERATOR(pg_catalog.=) on a subquery', "SELECT 1 WHERE 'North' OPERATOR(pg_catalog.=) ANY (SELECT region FROM orders)", 'SQL_FORBIDDEN'],
  ['COLLATE', 'SELECT region COLLATE "C" FROM orders', 'SQL_FORBIDDEN'],
  ['SIMILAR TO', "SELECT region FROM orders WHERE region SIMILAR TO 'N%'", 'SQL_FORBIDDEN'],
  ['AT TIME ZONE', "SELECT created_at AT TIME ZONE 'UTC' FROM orders", 'SQL_FORBIDDEN'],
  ['named argument', "SELECT lower(x => 'A')", 'SQL_FORBIDDEN'],
  ['VARIADIC', "SELECT concat(VARIADIC ARRAY['a', 'b'])", 'SQL_FORBIDDEN'],
  // FROM-clause functions and sampling, SELECT INTO
  ['generate_series in FROM', 'SELECT * FROM generate_series(1, 10)', 'SQL_FORBIDDEN'],
  ['generate_series joined to the dataset', 'SELECT g, region FROM orders, generate_series(1, 3) g', 'SQL_FORBIDDEN'],
  ['unnest in FROM', "SELECT * FROM unnest(ARRAY['a'])", 'SQL_FORBIDDEN'],
  ['ROWS FROM', 'SELECT * FROM ROWS FROM (generate_series(1, 2))', 'SQL_FORBIDDEN'],
  ['XMLTABLE', "SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x text PATH '.')", 'SQL_FORBIDDEN'],
  ['TABLESAMPLE', 'SELECT * FROM orders TABLESAMPLE SYSTEM (50)', 'SQL_FORBIDDEN'],
  ['SELECT INTO', 'SELECT * INTO stolen FROM orders', 'SQL_FORBIDDEN'],
  ['SELECT INTO TEMP', 'SELECT region INTO TEMP TABLE stolen FROM orders', 'SQL_FORBIDDEN'],
  ['CREATE TABLE AS', 'CREATE TABLE stolen AS SELECT * FROM orders', 'SQL_FORBIDDEN'],
  // VALUES and rows
  ['VALUES reading a catalog', 'VALUES ((SELECT rolname FROM pg_roles LIMIT 1))', 'SQL_FORBIDDEN'],
  ['VALUES with set_config', "VALUES (set_config('role', 'postgres', true))", 'SQL_FORBIDDEN'],
  ['whole-row of a catalog as json', 'SELECT to_json(r) FROM pg_roles r', 'SQL_FORBIDDEN'],
  // not one statement of SQL
  ['empty after comments', '/* nothing */ -- at all', 'SQL_FORBIDDEN'],
  ['unterminated string', "SELECT 'globex_inc FROM orders", 'SQL_SYNTAX'],
  ['unterminated dollar quote', 'SELECT $$globex_inc FROM orders', 'SQL_SYNTAX'],
  ['unterminated comment', 'SELECT region FROM orders /* ', 'SQL_SYNTAX'],
  ['garbage', "SELEC * FROM orders WHERE tenant_id = 'globex_inc'", 'SQL_SYNTAX'],
  ['dangling OR', 'SELECT * FROM orders WHERE tenant_id = 1 OR', 'SQL_SYNTAX'],
  ['U& with an invalid escape', 'SELECT * FROM U&"\\zzzz"', 'SQL_SYNTAX'],
];

/** Writes: refused for the writer (code given) and POLICY_DENIED for the reader. [label, sql, writer's code] */
const WRITE_PATH: Array<[string, string, Refusal]> = [
  ['INSERT naming the tenant column first', "INSERT INTO orders (tenant_id, region, amount) VALUES ('globex_inc', 'X', 1)", 'SQL_FORBIDDEN'],
  ['INSERT naming the tenant column last', "INSERT INTO orders (region, amount, tenant_id) VALUES ('X', 1, 'globex_inc')", 'SQL_FORBIDDEN'],
  ['INSERT with a quoted tenant column', `INSERT INTO orders ("tenant_id", region, amount) VALUES ('globex_inc', 'X', 1)`, 'SQL_FORBIDDEN'],
  ['UPDATE SET tenant_id', "UPDATE orders SET tenant_id = 'globex_inc'", 'SQL_FORBIDDEN'],
  ['UPDATE SET (…, tenant_id) = (…)', "UPDATE orders SET (region, tenant_id) = ('X', 'globex_inc')", 'SQL_FORBIDDEN'],
  ['UPDATE SET (tenant_id) = ROW(…)', "UPDATE orders SET (tenant_id) = ROW('globex_inc')", 'SQL_FORBIDDEN'],
  ['UPDATE SET tenant_id from a subquery', "UPDATE orders SET (tenant_id) = (SELECT 'globex_inc')", 'SQL_FORBIDDEN'],
  ['INSERT … SELECT', 'INSERT INTO orders (region, amount) SELECT region, amount FROM orders', 'SQL_FORBIDDEN'],
  ['INSERT DEFAULT VALUES', 'INSERT INTO orders DEFAULT VALUES', 'SQL_FORBIDDEN'],
  ['INSERT without a column list', "INSERT INTO orders VALUES (DEFAULT, 'globex_inc', 'X', 'open', 1)", 'SQL_FORBIDDEN'],
  ['ON CONFLICT DO UPDATE SET tenant_id', "INSERT INTO orders (id, region, amount) VALUES (1, 'X', 1) ON CONFLICT (id) DO UPDATE SET tenant_id = 'globex_inc'", 'SQL_FORBIDDEN'],
  ['ON CONFLICT DO UPDATE', "INSERT INTO orders (id, region, amount) VALUES (3, 'X', 1) ON CONFLICT (id) DO UPDATE SET region = EXCLUDED.region RETURNING region", 'SQL_FORBIDDEN'],
  ['INSERT RETURNING *', "INSERT INTO orders (region, amount) VALUES ('X', 1) RETURNING *", 'SQL_FORBIDDEN'],
  ['UPDATE RETURNING *', 'UPDATE orders SET region = region RETURNING *', 'SQL_FORBIDDEN'],
  ['DELETE RETURNING *', 'DELETE FROM orders WHERE false RETURNING *', 'SQL_FORBIDDEN'],
  ['RETURNING alias.*', 'UPDATE orders o SET region = region RETURNING o.*', 'SQL_FORBIDDEN'],
  ['RETURNING the whole row', 'UPDATE orders o SET region = region RETURNING o', 'SQL_FORBIDDEN'],
  ['RETURNING to_json(row.*)', "INSERT INTO orders (region, amount) VALUES ('X', 1) RETURNING to_json(orders.*)", 'SQL_FORBIDDEN'],
  ['RETURNING a masked column', 'UPDATE orders SET region = region RETURNING email', 'SQL_FORBIDDEN'],
  ['RETURNING a masked column in an expression', "UPDATE orders SET region = region RETURNING id, lower(email) AS e", 'SQL_FORBIDDEN'],
  ['RETURNING a restricted column', 'UPDATE orders SET region = region RETURNING internal_cost', 'SQL_FORBIDDEN'],
  ['DELETE RETURNING a restricted column', 'DELETE FROM orders WHERE false RETURNING internal_cost', 'SQL_FORBIDDEN'],
  ['INSERT a restricted column', "INSERT INTO orders (region, amount, internal_cost) VALUES ('X', 1, 5)", 'SQL_FORBIDDEN'],
  ['UPDATE a restricted column', 'UPDATE orders SET internal_cost = 0', 'SQL_FORBIDDEN'],
  // A writer filters and copies through masks too (SPEC: masked columns are read through their mask).
  ['UPDATE filtering on a masked column (raw-value oracle)', "UPDATE orders SET status = status WHERE email = 'a1@acme.example' RETURNING id", 'SQL_FORBIDDEN'],
  ['UPDATE copying a masked column into a readable one', 'UPDATE orders SET region = email WHERE false RETURNING region', 'SQL_FORBIDDEN'],
  ['INSERT INTO public.orders', "INSERT INTO public.orders (region, amount) VALUES ('X', 1)", 'SQL_FORBIDDEN'],
  ['UPDATE "public"."orders"', `UPDATE "public"."orders" SET region = 'X'`, 'SQL_FORBIDDEN'],
  ['DELETE FROM a catalog', 'DELETE FROM pg_catalog.pg_authid', 'SQL_FORBIDDEN'],
  ['DELETE FROM tenantgate.api_keys', 'DELETE FROM tenantgate.api_keys', 'SQL_FORBIDDEN'],
  ['UPDATE a non-dataset table', "UPDATE context_key SET k_ipad = ''", 'SQL_FORBIDDEN'],
  ['WITH on a write', 'WITH g AS (SELECT 1) DELETE FROM orders', 'SQL_FORBIDDEN'],
  ['data-modifying CTE on a write', "WITH d AS (DELETE FROM orders RETURNING id) UPDATE orders SET region = 'X'", 'SQL_FORBIDDEN'],
  ['UPDATE reading a catalog', 'UPDATE orders SET region = (SELECT rolname FROM pg_roles LIMIT 1)', 'SQL_FORBIDDEN'],
  ['DELETE USING a catalog', 'DELETE FROM orders USING pg_roles WHERE false', 'SQL_FORBIDDEN'],
  ['UPDATE FROM a catalog', 'UPDATE orders SET region = region FROM pg_class WHERE false', 'SQL_FORBIDDEN'],
  ['DELETE keyed on a setting', "DELETE FROM orders WHERE current_setting('tenantgate.tenant') = 'acme_corp'", 'SQL_FORBIDDEN'],
  ['INSERT calling pg_sleep', "INSERT INTO orders (region, amount) VALUES ('X', pg_sleep(1)::text::int)", 'SQL_FORBIDDEN'],
  ['INSERT using nextval', "INSERT INTO orders (id, region, amount) VALUES (nextval('orders_id_seq'), 'X', 1)", 'SQL_FORBIDDEN'],
  ['UPDATE … WHERE CURRENT OF', "UPDATE orders SET region = 'X' WHERE CURRENT OF c", 'SQL_FORBIDDEN'],
];

/**
 * Look hostile, are not: single SELECTs over the dataset (or over nothing) that the planner
 * rightly lets through. Each runs and must answer exactly `rows` (acme_corp's own data only).
 * [label, sql, params, expected rows]
 */
const ALLOWED_BUT_HARMLESS: Array<[string, string, unknown[], unknown[][]]> = [
  // The tenant predicate is ANDed in: a client predicate cannot widen it.
  ['tenant_id = globex_inc', "SELECT region FROM orders WHERE tenant_id = 'globex_inc'", [], []],
  ['… OR true', "SELECT region FROM orders WHERE tenant_id = 'globex_inc' OR true ORDER BY region", [], [['North'], ['South']]],
  ['… OR 1 = 1 via a parameter', 'SELECT region FROM orders WHERE tenant_id = $1 OR 1 = 1 ORDER BY region', ['globex_inc'], [['North'], ['South']]],
  ['tenant_id <> own tenant', "SELECT count(*) FROM orders WHERE tenant_id <> 'acme_corp'", [], [[0]]],
  ['dollar-quoted globex_inc', 'SELECT count(*) FROM orders WHERE tenant_id = $$globex_inc$$', [], [[0]]],
  ['dollar-quoted text that looks like a second statement', "SELECT count(*) FROM orders WHERE region = $a$ $b$ ; SET ROLE postgres; $a$", [], [[0]]],
  ['unicode-escaped string literal', `SELECT count(*) FROM orders WHERE tenant_id = U&'\\0067lobex_inc'`, [], [[0]]],
  ['quoted dataset name', 'SELECT count(*) FROM "orders"', [], [[2]]],
  ['upper-case dataset name', 'SELECT count(*) FROM ORDERS', [], [[2]]],
  ['comment between name and alias', 'SELECT count(*) FROM orders/* , pg_roles */o', [], [[2]]],
  ['self-join across the predicate', 'SELECT count(*) FROM orders a JOIN orders b ON a.id <> b.id', [], [[2]]],
  ['CTE over the dataset', "WITH g AS (SELECT * FROM orders WHERE tenant_id = 'globex_inc' OR true) SELECT count(*) FROM g", [], [[2]]],
  ['sibling CTE named like nothing real', 'WITH a AS (SELECT id FROM orders), b AS (SELECT * FROM a) SELECT count(*) FROM b', [], [[2]]],
  ['VALUES masquerading as the dataset', "SELECT count(*) FROM (VALUES ('globex_inc', 'North')) AS orders(tenant_id, region) WHERE tenant_id = 'globex_inc'", [], [[1]]],
  ['VALUES joined to the dataset', "SELECT count(*) FROM orders o JOIN (VALUES ('globex_inc'), ('acme_corp')) v(t) ON v.t = o.tenant_id", [], [[2]]],
  ['pg_catalog-qualified allowed function', 'SELECT pg_catalog.upper(region) FROM orders ORDER BY 1', [], [['NORTH'], ['SOUTH']]],
  ['aggregate over everything visible', 'SELECT count(*), sum(amount) FROM orders', [], [[2, 200 + 100]]],
  ['masked column through its mask', 'SELECT count(*) FROM orders WHERE email LIKE \'%@acme.example\'', [], [[0]]],
];

describe.each(BACKENDS)('hostile SQL over HTTP on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  let before: unknown;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    await seedCanaries(fx);
    s = await serve(fx);
    before = await ownerSnapshot(fx);
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  const send = (key: 'acme' | 'acmeWriter', sql: string, params: unknown[] = []) =>
    s.post('/v1/queries', params.length ? { sql, params } : { sql }, { 'x-api-key': s.keys[key] });

  /** Whatever the status: no globex_inc row or raw masked value in the rows, no canary in the body. */
  const noLeak = (sql: string, json: { rows?: unknown }) => {
    expect(leakInRows(json?.rows), `leak in the answer to ${sql}`).toBeUndefined();
    if (!/canary/i.test(sql)) expect(JSON.stringify(json)).not.toMatch(/canary/i);
  };

  it('the corpus is large enough', () => {
    expect(READ_PATH.length + WRITE_PATH.length).toBeGreaterThanOrEqual(80);
    const all = [...READ_PATH, ...WRITE_PATH].map(([, sql]) => sql);
    expect(new Set(all).size).toBe(all.length);
  });

  it.each(READ_PATH)('read path refused: %s', async (_label, sql, code) => {
    for (const key of ['acme', 'acmeWriter'] as const) {
      const r = await send(key, sql);
      noLeak(sql, r.json);
      expect({ key, status: r.status, code: r.json?.error?.code }).toEqual({ key, status: 400, code });
    }
  });

  it.each(WRITE_PATH)('write refused: %s', async (_label, sql, code) => {
    const reader = await send('acme', sql);
    noLeak(sql, reader.json);
    expect({ status: reader.status, code: reader.json?.error?.code }).toEqual({ status: 403, code: 'POLICY_DENIED' });
    const writer = await send('acmeWriter', sql);
    noLeak(sql, writer.json);
    expect({ status: writer.status, code: writer.json?.error?.code }).toEqual({ status: 400, code });
  });

  it.each(ALLOWED_BUT_HARMLESS)('allowed but harmless: %s', async (_label, sql, params, rows) => {
    for (const key of ['acme', 'acmeWriter'] as const) {
      const r = await send(key, sql, params);
      noLeak(sql, r.json);
      expect({ key, status: r.status, rows: r.json?.rows }).toEqual({ key, status: 200, rows });
    }
  });

  it('after the whole corpus the owner sees the data and the schema unchanged', async () => {
    expect(await ownerSnapshot(fx)).toEqual(before);
    const still = await send('acme', 'SELECT region, amount FROM orders ORDER BY region');
    expect(still.json.rows).toEqual([['North', 100], ['South', 200]]);
  });
});
