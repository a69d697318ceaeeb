import { apiSuite } from './api-suite.ts';

// The REST API against embedded PGlite, reached through the same pg code path.
apiSuite('pglite');
