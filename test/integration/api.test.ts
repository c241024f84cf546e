/** The HTTP API on the embedded defaults: SQLite and local folders. */
import t from 'tap';
import { startTestServer } from '../helpers/processes.js';
import { apiSuite } from './suite.js';

apiSuite(t, (overrides = {}) => startTestServer(overrides), 'embedded');
