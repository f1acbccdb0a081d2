/** The boot.64.plain baseline's worker: an empty module that says it is up. */
import { parentPort } from 'node:worker_threads';

parentPort!.postMessage('ready');
