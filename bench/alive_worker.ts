/** The boot.rss.plain baseline's worker: an empty module that stays alive (listens on its port) and says it is up. */
import { parentPort } from 'node:worker_threads';

parentPort!.on('message', () => undefined);
parentPort!.postMessage('ready');
