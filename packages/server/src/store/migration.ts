/** One numbered schema step. Steps are applied in order and recorded in `baton_migrations`. */
export interface Migration {
  version: number;
  name: string;
  /** SQL statements, run in one transaction. */
  up: string;
}
