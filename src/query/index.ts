/**
 * The in-memory keyed view, indexes, query evaluation and live queries (no I/O).
 */
export { ChangeSet, type RowChange, type TableChange } from './changes.js';
export {
  type Condition,
  compareValues,
  explainQuery,
  type QueryExplain,
  type QuerySpec,
  runQuery,
  type SortDirection,
  type SortKey,
  sameRows,
  WHERE_OPS,
  type WhereOp,
} from './evaluate.js';
export { deepFreeze } from './freeze.js';
export { LiveCount, LiveResult } from './incremental.js';
export { INDEXABLE_TYPES } from './indexes.js';
export { LiveQueries, type Maintained } from './live.js';
export { type IndexDefs, layerToKeyed, Overlay, type ReadLayer, tableOf, View } from './view.js';
