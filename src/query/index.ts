/**
 * The in-memory keyed view, query evaluation and live queries (no I/O).
 */
export {
  type Condition,
  compareValues,
  type QuerySpec,
  runQuery,
  type SortDirection,
  type SortKey,
  sameRows,
  WHERE_OPS,
  type WhereOp,
} from './evaluate.js';
export { deepFreeze } from './freeze.js';
export { LiveQueries } from './live.js';
export { layerToKeyed, Overlay, type ReadLayer, tableOf, View } from './view.js';
