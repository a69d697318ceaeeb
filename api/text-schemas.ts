import { z } from 'zod';

/** Text that identifies something (a name, an id, a filter): no control characters, since it can reach a query. */
export const identifier = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'control characters are not allowed');

/** PostgreSQL's `integer`: cursors over `seq` columns stay inside it. */
export const INT32_MAX = 2_147_483_647;
