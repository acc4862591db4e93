// The shared Presence suite on the standalone engine's in-memory presence table.
import t from 'tap';
import { createMemoryPresence } from '../../daemon/engine/memory-presence.js';
import { presenceConformance } from './presence.js';

presenceConformance(t, 'memory', async () => createMemoryPresence());
