#pragma once
// The run store's schema (version 5) and the migrations from versions 1 to 4 (private to
// daemon/src). docs/run-store.md describes the tables.
#include "run_store_sqlite.hpp"

namespace pnn::daemon::sqlite {

/// The schema version this build writes; it opens versions 1..kSchemaVersion.
inline constexpr int kSchemaVersion = 5;

/// On a freshly opened connection: refuses a file that is not a run store (another
/// application's database, a newer schema) before writing anything to it, switches to WAL with
/// synchronous = FULL, prepares `tx`, then creates the schema in an empty file or migrates an
/// older one, one version per transaction. Throws StoreError naming the file and the fix.
void prepare_schema(const Db& db, TxStmts& tx);

}  // namespace pnn::daemon::sqlite
