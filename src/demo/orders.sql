CREATE TABLE IF NOT EXISTS public.orders (
  id serial PRIMARY KEY,
  tenant_id varchar(50) NOT NULL,
  region text NOT NULL,
  status text NOT NULL DEFAULT 'open',
  amount numeric NOT NULL,
  internal_cost numeric,
  email text,
  deleted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_tenant_idx ON public.orders (tenant_id, id);
INSERT INTO public.orders (tenant_id, region, amount, internal_cost, email) VALUES
  ('acme_corp', 'North', 100, 11, 'a1@acme.example'),
  ('acme_corp', 'South', 200, 22, 'a2@acme.example'),
  ('globex_inc', 'North', 300, 33, 'g1@globex.example'),
  ('globex_inc', 'East', 400, 44, 'g2@globex.example');
