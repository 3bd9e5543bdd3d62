import { z } from 'zod';

const scalar = z.union([z.string().max(10_000), z.number().finite(), z.boolean()]);
export const FILTER_OPS = ['=', '!=', '>', '>=', '<', '<=', 'in', 'not_in', 'like', 'is_null', 'is_not_null', 'between'] as const;
export const MAX_IN_LIST = 10_000;

/** The body of `POST /v1/query`: strict, so unknown fields are errors (also the OpenAPI schema). */
export const semanticQuerySchema = z.strictObject({
  dataset: z.string().min(1).max(63),
  dimensions: z.array(z.string().max(63)).max(64).default([]),
  metrics: z.array(z.string().max(63)).max(64).default([]),
  filters: z
    .array(
      z.strictObject({
        field: z.string().max(63),
        op: z.enum(FILTER_OPS),
        value: z.union([scalar, z.array(scalar).max(MAX_IN_LIST), z.null()]).optional(),
      }),
    )
    .max(100)
    .default([]),
  order: z.array(z.strictObject({ field: z.string().max(63), dir: z.enum(['asc', 'desc']).default('asc') })).max(16).default([]),
  limit: z.number().int().min(0).optional(),
  offset: z.number().int().min(0).max(1_000_000).default(0),
});

export type SemanticQuery = z.infer<typeof semanticQuerySchema>;
