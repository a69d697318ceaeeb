import { apiSuite } from './api-suite.ts';

// The REST API against a fresh database on the machine's real PostgreSQL server.
apiSuite('postgres');
