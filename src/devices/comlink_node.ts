/**
 * comlink's Node adapter, typed. The package ships it as UMD with an ESM
 * `export default` declaration; under NodeNext the default import is the
 * CommonJS module object, whose runtime value *is* the function. One cast,
 * here, instead of one at every import.
 */
import adapterModule from 'comlink/dist/umd/node-adapter.js';

type NodeEndpointFn = typeof adapterModule.default;
export const nodeEndpoint = adapterModule as unknown as NodeEndpointFn;
