import { PGlite } from '@electric-sql/pglite';
const t0=Date.now();
const db = new PGlite();
await db.waitReady;
console.log('boot ms', Date.now()-t0);
const r = await db.query(`select current_user, session_user, version()`);
console.log(r.rows);
await db.exec(`
create role tg_read nologin; create role tg_login login password 'x';
create table orders(id serial primary key, tenant_id text not null, region text, amount numeric);
insert into orders(tenant_id,region,amount) values ('acme','North',100),('globex','North',300);
alter table orders enable row level security; alter table orders force row level security;
create schema tenantgate;
create table tenantgate.k(k_ipad bytea, k_opad bytea);
insert into tenantgate.k values (decode(repeat('36',64),'hex'), decode(repeat('5c',64),'hex'));
create function tenantgate.gt() returns text language sql stable security definer set search_path = pg_catalog as $$
 select case when encode(sha256(k.k_opad || sha256(k.k_ipad || convert_to(coalesce(current_setting('tg.tenant', true),''),'UTF8'))),'hex') = current_setting('tg.mac', true) then current_setting('tg.tenant', true) end from tenantgate.k k $$;
grant usage on schema tenantgate to tg_read, tg_login;
grant select on orders to tg_read, tg_login;
create policy p on orders for select to tg_read, tg_login using (tenant_id = (select tenantgate.gt()));
`);
const dump = await db.dumpDataDir('none');
const t1=Date.now();
const db2 = new PGlite({ loadDataDir: dump, username: 'tg_login' });
await db2.waitReady;
console.log('clone ms', Date.now()-t1);
console.log((await db2.query('select current_user, session_user')).rows);
const crypto = await import('node:crypto');
const mac = crypto.createHmac('sha256', Buffer.alloc(0)).update('acme').digest('hex');
await db2.exec('begin');
await db2.query(`select set_config('tg.tenant','acme',true), set_config('tg.mac',$1,true)`, [mac]);
console.log((await db2.query('select * from orders')).rows);
await db2.exec('commit');
try { await db2.query('set role postgres'); } catch(e) { console.log('setrole err', e.message); }
try { console.log((await db2.query('select * from tenantgate.k')).rows);} catch(e) { console.log('k err', e.message); }
