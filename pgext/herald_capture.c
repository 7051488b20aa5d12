/* herald_capture.c: herald's capture trigger as a PostgreSQL loadable module ("native capture").
 *
 * The same log row as the PL/pgSQL capture functions of src/store/pg_schema.c (migration 3):
 * (seq, id, xid, at, source, op, old, new, session) with old/new as to_json of the row images and
 * session as the herald.session (else hasura.user) setting's text. It writes that row with
 * heap_insert and index_insert instead of an SQL INSERT through SPI: measured with pgbench, the
 * executor's per-statement start-up is most of what the PL/pgSQL trigger costs a single-row
 * write (docs/benchmarks.md, "Native capture"). What it still repeats per write was counted with
 * callgrind and cut where PostgreSQL's routines redo work per row: event ids come from random
 * bytes drawn for 64 ids at a time (next_event_id), row images are written as JSON with each
 * table's column kinds looked up once (row_json), and herald.log's oid and index list are
 * cached until an invalidation (open_log, open_indexes).
 *
 * The direct write is taken only while herald.log has exactly the shape herald created (columns,
 * types, NOT NULLs, no triggers, rules, CHECK constraints or row security, every index a plain
 * immediate b-tree over columns); otherwise the row goes through a prepared SQL INSERT, which
 * PostgreSQL checks and maintains in full.
 *
 * One function serves every trigger herald installs in native mode (src/capture/capture_pg.c):
 *   AFTER UPDATE FOR EACH ROW                          one row image pair per call
 *   AFTER INSERT|DELETE FOR EACH STATEMENT, with the transition table of the new|old rows:
 *     one row (the common single-row statement)        written as a row-level call would
 *     more                                             batches of BATCH: heap_multi_insert,
 *                                                      one WAL record per page, then the indexes
 *   AFTER INSERT|UPDATE|DELETE FOR EACH ROW            partitioned tables (an UPDATE that moves a
 *                                                      row fires no statement-level INSERT/DELETE)
 * Measured against row-level INSERT triggers: the same single-row cost, bulk statements ~30 %
 * faster. The trigger's one argument is the source name written to the log.
 *
 * herald apply installs it as herald.capture_native() when the server can load this library
 * (docs/config.md, key capture); the library must then stay installed, as any extension's. */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(herald_capture);

/* herald.log's columns as migration 3 leaves them, in attribute order. */
enum { COL_SEQ, COL_ID, COL_XID, COL_AT, COL_SOURCE, COL_OP, COL_OLD, COL_NEW, COL_SESSION, NCOLS };

static const struct {
    const char *name;
    Oid type;
    bool not_null;
} log_columns[NCOLS] = {
    {"seq", INT8OID, true},       {"id", UUIDOID, true},     {"xid", XID8OID, true},
    {"at", TIMESTAMPTZOID, true}, {"source", TEXTOID, true}, {"op", TEXTOID, true},
    {"old", JSONOID, false},      {"new", JSONOID, false},   {"session", TEXTOID, false},
};

/* Per backend: herald.log's oid, its identity sequence and whether the direct write applies.
 * Dropped by any relcache invalidation of the log (ALTER TABLE, CREATE INDEX, herald apply). */
static struct {
    bool valid;
    Oid log;   /* herald.log */
    Oid seq;   /* the sequence behind seq's GENERATED ALWAYS AS IDENTITY */
    bool fast; /* the shape matches: write with heap_insert */
    /* Its indexes, listed (once the cache is valid) by the first write that needs them. */
    bool listed;
    bool direct; /* every index a plain immediate b-tree over columns */
    int nindexes;
    Oid *index_oids;
    IndexInfo **index_infos;
    MemoryContext index_cxt; /* holds index_oids, index_infos */
} cache;
static bool callback_registered;

/* The prepared INSERT of the general path, kept for the backend's life once made. */
static SPIPlanPtr insert_plan;

/* The JSON writer's per-table column descriptions (row_json); see json_shape_of. */
typedef struct json_shape json_shape;
static json_shape *shapes;
static void shapes_changed(Oid relid);

static void relcache_changed(Datum arg, Oid relid)
{
    if (relid == InvalidOid || relid == cache.log) cache.valid = cache.listed = false;
    shapes_changed(relid);
}

/* Whether herald.log (opened) has exactly herald's columns (names, types, NOT NULL), and nothing
 * a direct write would bypass: triggers, rules, check constraints, row security. These change
 * only under a lock that conflicts with ours, so the answer holds while the table is open.
 * Indexes can be added concurrently (CREATE INDEX CONCURRENTLY): open_indexes checks them on
 * every write. The columns' defaults are not consulted: the direct write computes seq, id, xid
 * and at as herald's defaults do. */
static bool shape_is_herald(Relation rel)
{
    TupleDesc desc = RelationGetDescr(rel);
    if (desc->natts != NCOLS || rel->trigdesc != NULL || rel->rd_rules != NULL ||
        rel->rd_rel->relrowsecurity || rel->rd_rel->relkind != RELKIND_RELATION ||
        (desc->constr != NULL && desc->constr->num_check > 0))
        return false;
    for (int i = 0; i < NCOLS; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped || att->atttypid != log_columns[i].type ||
            att->attnotnull != log_columns[i].not_null ||
            strcmp(NameStr(att->attname), log_columns[i].name) != 0)
            return false;
    }
    return true;
}

typedef struct log_index {
    Relation rel;
    IndexInfo *info;
} log_index;

/* Closes what open_indexes opened; the locks are kept to the end of the transaction, as the
 * executor keeps those of the relations it writes. */
static void close_indexes(log_index *v, int n)
{
    for (int i = 0; i < n; i++)
        index_close(v[i].rel, NoLock);
}

static bool plain_btree(Relation irel, IndexInfo *ii)
{
    return ii->ii_Expressions == NIL && ii->ii_Predicate == NIL && ii->ii_ExclusionOps == NULL &&
           !(ii->ii_Unique && !irel->rd_index->indimmediate);
}

/* Lists herald.log's indexes into the cache: their oids and IndexInfo, which BuildIndexInfo would
 * otherwise make again for every write. The list changes only with a relcache invalidation of the
 * table (CREATE and DROP INDEX, and each step of their CONCURRENTLY forms, send one), which
 * clears the cache. */
static void list_indexes(Relation rel)
{
    if (cache.index_cxt == NULL)
        cache.index_cxt = AllocSetContextCreate(CacheMemoryContext, "herald capture indexes",
                                                ALLOCSET_SMALL_SIZES);
    MemoryContextReset(cache.index_cxt);
    cache.listed = true; /* first: an invalidation while listing clears it again */
    MemoryContext outer = MemoryContextSwitchTo(cache.index_cxt);
    List *oids = RelationGetIndexList(rel);
    cache.nindexes = 0;
    cache.direct = true;
    cache.index_oids = palloc(sizeof(Oid) * (list_length(oids) + 1));
    cache.index_infos = palloc(sizeof(IndexInfo *) * (list_length(oids) + 1));
    ListCell *lc;
    foreach (lc, oids) {
        Relation irel = index_open(lfirst_oid(lc), RowExclusiveLock);
        IndexInfo *ii = BuildIndexInfo(irel);
        cache.direct = cache.direct && plain_btree(irel, ii);
        cache.index_oids[cache.nindexes] = lfirst_oid(lc);
        cache.index_infos[cache.nindexes++] = ii;
        index_close(irel, NoLock);
    }
    MemoryContextSwitchTo(outer);
}

/* Opens herald.log's indexes (rel is open and locked) into *out; returns how many, or -1 (none
 * open) when one is not a plain immediate b-tree over columns, which the direct write cannot
 * maintain. An invalidation taken while locking them (CREATE INDEX CONCURRENTLY's steps do not
 * wait for our lock) lists them again. */
static int open_indexes(Relation rel, log_index **out)
{
    for (;;) {
        if (!cache.listed) list_indexes(rel);
        if (!cache.listed) continue;
        if (!cache.direct) return -1;
        log_index *v = palloc(sizeof *v * (cache.nindexes + 1));
        for (int i = 0; i < cache.nindexes; i++) {
            v[i].rel = index_open(cache.index_oids[i], RowExclusiveLock);
            v[i].info = cache.index_infos[i];
        }
        if (cache.listed) {
            *out = v;
            return cache.nindexes;
        }
        close_indexes(v, cache.nindexes);
        pfree(v);
    }
}

/* Opens herald.log for a write and makes the cache describe it. While the cache is valid the
 * table is opened by its oid: locking it takes pending invalidations, and any that could concern
 * it (rename, drop, ALTER) clears the cache, so a cache still valid once the lock is held still
 * names herald.log. Otherwise the name is resolved (a catalog lookup, a twentieth of a
 * single-row capture's cost by callgrind). */
static Relation open_log(void)
{
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(relcache_changed, (Datum)0);
        callback_registered = true;
    }
    if (cache.valid) {
        Relation rel = try_table_open(cache.log, RowExclusiveLock);
        if (rel != NULL && cache.valid) return rel;
        if (rel != NULL) table_close(rel, NoLock);
    }
    Relation rel = table_openrv_extended(makeRangeVar("herald", "log", -1), RowExclusiveLock, true);
    if (rel == NULL)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("herald capture: table herald.log does not exist"),
                        errhint("Run herald apply.")));
    if (!cache.valid || cache.log != RelationGetRelid(rel)) {
        cache.valid = true; /* first: an invalidation while looking (below) clears it again */
        cache.listed = false;
        cache.log = RelationGetRelid(rel);
        cache.fast = shape_is_herald(rel);
        cache.seq = cache.fast ? getIdentitySequence(cache.log, COL_SEQ + 1, true) : InvalidOid;
        if (!OidIsValid(cache.seq)) cache.fast = false;
    }
    return rel;
}

/* The session as the application set it: herald.session, else hasura.user; NULL when neither is
 * set or both are empty (the same as migration 3's coalesce(nullif(current_setting ...))). */
static const char *session_text(void)
{
    const char *s = GetConfigOption("herald.session", true, false);
    if (s != NULL && s[0] != '\0') return s;
    s = GetConfigOption("hasura.user", true, false);
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Row images as JSON, text for text what row_to_json writes (PostgreSQL 15's json.c:
 * composite_to_json, json_categorize_type, datum_to_json), without what it repeats for every
 * row: finding each column's type category and output function in the catalogs. That lookup
 * was over half of row_to_json's ~6,000 instructions for a three-column row (callgrind), and
 * row_to_json a fifth of a bulk capture's cost per row.
 *
 * A table's shape is made once per backend and dropped by any relcache invalidation of the
 * table (ALTER TABLE of any kind, column renames and type changes included). Columns whose JSON
 * could change without one, or which need recursion, make the whole table go through
 * row_to_json itself: arrays, composites, and types (after domains) that are not built in,
 * since CREATE CAST ... AS json applies to those at once. */
typedef enum { J_BOOL, J_NUMBER, J_DATETIME, J_JSON, J_STRING } json_kind;

typedef struct json_column {
    bool dropped;
    json_kind kind;
    Oid type;     /* after domains */
    FmgrInfo out; /* J_NUMBER, J_JSON, J_STRING: the type's output function */
    char *key;    /* the column's name as a JSON string, then ':' */
} json_column;

struct json_shape {
    Oid rel;
    bool ready;       /* made in full: a shape whose making failed is freed at the next lookup */
    bool stale;       /* invalidated: freed at the next lookup */
    bool row_to_json; /* a column needs row_to_json: the table's rows all go through it */
    int natts;
    json_column *cols;
    MemoryContext cxt; /* holds this struct and everything it points to */
    json_shape *next;
};

static void shapes_changed(Oid relid)
{
    for (json_shape *s = shapes; s != NULL; s = s->next)
        if (relid == InvalidOid || s->rel == relid) s->stale = true;
}

/* Makes rel's shape, first linked into shapes: the catalog reads below may take invalidations,
 * and one of rel's must find it there to mark it stale. */
static json_shape *make_shape(Relation rel)
{
    TupleDesc desc = RelationGetDescr(rel);
    MemoryContext cxt = AllocSetContextCreate(CacheMemoryContext, "herald capture json shape",
                                              ALLOCSET_SMALL_SIZES);
    MemoryContext outer = MemoryContextSwitchTo(cxt);
    json_shape *s = palloc0(sizeof *s);
    s->rel = RelationGetRelid(rel);
    s->cxt = cxt;
    s->next = shapes;
    shapes = s;
    s->natts = desc->natts;
    s->cols = palloc0(sizeof *s->cols * Max(desc->natts, 1));
    for (int i = 0; i < desc->natts && !s->row_to_json; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        json_column *col = &s->cols[i];
        col->dropped = att->attisdropped;
        if (col->dropped) continue;
        col->type = getBaseType(att->atttypid);
        switch (col->type) {
        case BOOLOID:
            col->kind = J_BOOL;
            break;
        case INT2OID:
        case INT4OID:
        case INT8OID:
        case FLOAT4OID:
        case FLOAT8OID:
        case NUMERICOID:
            col->kind = J_NUMBER;
            break;
        case DATEOID:
        case TIMESTAMPOID:
        case TIMESTAMPTZOID:
            col->kind = J_DATETIME; /* JsonEncodeDateTime by col->type */
            break;
        case JSONOID:
        case JSONBOID:
            col->kind = J_JSON;
            break;
        default:
            if (col->type >= FirstNormalObjectId || OidIsValid(get_element_type(col->type)) ||
                col->type == ANYARRAYOID || col->type == ANYCOMPATIBLEARRAYOID ||
                col->type == RECORDARRAYOID || type_is_rowtype(col->type))
                s->row_to_json = true;
            col->kind = J_STRING;
        }
        if (col->kind == J_NUMBER || col->kind == J_JSON || col->kind == J_STRING) {
            Oid out;
            bool varlena;
            getTypeOutputInfo(col->type, &out, &varlena);
            fmgr_info_cxt(out, &col->out, cxt);
        }
        StringInfoData key;
        initStringInfo(&key);
        escape_json(&key, NameStr(att->attname));
        appendStringInfoChar(&key, ':');
        col->key = key.data;
    }
    MemoryContextSwitchTo(outer);
    s->ready = true;
    return s;
}

/* The shape of rel's rows, made on first use and again after an invalidation. */
static json_shape *json_shape_of(Relation rel)
{
    Oid relid = RelationGetRelid(rel);
    for (json_shape **p = &shapes; *p != NULL;) {
        json_shape *s = *p;
        if (s->stale || !s->ready) {
            *p = s->next;
            MemoryContextDelete(s->cxt);
        } else if (s->rel == relid) {
            return s;
        } else {
            p = &s->next;
        }
    }
    /* Stale by the time it is made (an invalidation of rel while making it), it is still as
     * current as the relcache entry it was made from, which this call uses; the next call makes
     * it again. */
    return make_shape(rel);
}

/* values and nulls: room for desc->natts columns, the caller's for every row of a call. The
 * JSON is written after a text header's room in the buffer, which then is the text datum. */
static Datum row_json(json_shape *shape, HeapTuple tuple, TupleDesc desc, Datum *values,
                      bool *nulls)
{
    if (shape->row_to_json)
        return DirectFunctionCall1(row_to_json, heap_copy_tuple_as_datum(tuple, desc));
    heap_deform_tuple(tuple, desc, values, nulls);
    StringInfoData out;
    initStringInfo(&out);
    appendStringInfoSpaces(&out, VARHDRSZ);
    appendStringInfoChar(&out, '{');
    bool first = true;
    for (int i = 0; i < shape->natts; i++) {
        json_column *col = &shape->cols[i];
        if (col->dropped) continue;
        if (!first) appendStringInfoChar(&out, ',');
        first = false;
        appendStringInfoString(&out, col->key);
        if (nulls[i]) {
            appendStringInfoString(&out, "null");
            continue;
        }
        switch (col->kind) {
        case J_BOOL:
            appendStringInfoString(&out, DatumGetBool(values[i]) ? "true" : "false");
            break;
        case J_DATETIME: {
            char buf[MAXDATELEN + 1];
            JsonEncodeDateTime(buf, values[i], col->type, NULL);
            appendStringInfoChar(&out, '"');
            appendStringInfoString(&out, buf);
            appendStringInfoChar(&out, '"');
            break;
        }
        case J_NUMBER: {
            char *str = OutputFunctionCall(&col->out, values[i]);
            if (IsValidJsonNumber(str, strlen(str)))
                appendStringInfoString(&out, str);
            else
                escape_json(&out, str); /* NaN, Infinity */
            pfree(str);
            break;
        }
        case J_JSON: {
            char *str = OutputFunctionCall(&col->out, values[i]);
            appendStringInfoString(&out, str);
            pfree(str);
            break;
        }
        case J_STRING: {
            char *str = OutputFunctionCall(&col->out, values[i]);
            escape_json(&out, str);
            pfree(str);
            break;
        }
        }
    }
    appendStringInfoChar(&out, '}');
    SET_VARSIZE(out.data, out.len);
    return PointerGetDatum(out.data);
}

/* One log row through the executor: defaults, constraints, triggers, rules, every index kind. */
static void insert_sql(Datum source, Datum op, Datum old, bool old_null, Datum new_, bool new_null,
                       Datum session, bool session_null)
{
    Datum values[5] = {source, op, old, new_, session};
    char nulls[5] = {' ', ' ', old_null ? 'n' : ' ', new_null ? 'n' : ' ',
                     session_null ? 'n' : ' '};
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "herald capture: SPI_connect failed");
    if (insert_plan == NULL) {
        Oid types[5] = {TEXTOID, TEXTOID, JSONOID, JSONOID, TEXTOID};
        SPIPlanPtr plan = SPI_prepare("INSERT INTO herald.log (source, op, old, new, session)"
                                      " VALUES ($1, $2, $3, $4, $5)",
                                      5, types);
        if (plan == NULL)
            elog(ERROR, "herald capture: SPI_prepare failed: %s",
                 SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        insert_plan = plan;
    }
    /* A rule on herald.log may add statements of other kinds: their result code is reported. */
    int rc = SPI_execute_plan(insert_plan, values, nulls, false, 0);
    if (rc < 0)
        elog(ERROR, "herald capture: insert into herald.log failed: %s",
             SPI_result_code_string(rc));
    SPI_finish();
}

/* Event ids are version-4 UUIDs, as gen_random_uuid() makes them, from pg_strong_random's bytes
 * drawn for IDS_PER_DRAW ids at a time: one call costs about 12,000 instructions whatever its
 * length (OpenSSL's locks and reseed checks), a fifth of a single-row capture (callgrind), and
 * about 100 more per id for 64 ids. Each byte is used once, by the backend that drew it. */
#define IDS_PER_DRAW 64

static struct {
    uint8 bytes[IDS_PER_DRAW * UUID_LEN];
    int next; /* ids drawn and not yet used: from next to IDS_PER_DRAW */
} ids = {.next = IDS_PER_DRAW};

static void next_event_id(pg_uuid_t *uuid)
{
    if (ids.next == IDS_PER_DRAW) {
        if (!pg_strong_random(ids.bytes, sizeof ids.bytes))
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("herald capture: could not generate a random event id")));
        ids.next = 0;
    }
    uint8 *b = ids.bytes + UUID_LEN * ids.next++;
    memcpy(uuid->data, b, UUID_LEN);
    memset(b, 0, UUID_LEN);
    uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40; /* version 4 */
    uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

/* herald.log's row for one change, formed in the current memory context. */
static HeapTuple form_row(Relation rel, Datum source, Datum op, Datum old, bool old_null,
                          Datum new_, bool new_null, Datum session, bool session_null)
{
    Datum values[NCOLS];
    bool nulls[NCOLS] = {false};
    pg_uuid_t uuid; /* heap_form_tuple copies it */
    next_event_id(&uuid);
    values[COL_SEQ] = Int64GetDatum(nextval_internal(cache.seq, false));
    values[COL_ID] = UUIDPGetDatum(&uuid);
    values[COL_XID] = FullTransactionIdGetDatum(GetTopFullTransactionId());
    values[COL_AT] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    values[COL_SOURCE] = source;
    values[COL_OP] = op;
    values[COL_OLD] = old;
    nulls[COL_OLD] = old_null;
    values[COL_NEW] = new_;
    nulls[COL_NEW] = new_null;
    values[COL_SESSION] = session;
    nulls[COL_SESSION] = session_null;
    return heap_form_tuple(RelationGetDescr(rel), values, nulls);
}

/* Inserts into each of the n indexes (open_indexes) the entry of the row in slot, already in the
 * heap at slot->tts_tid. The values come from the row as formed (not as TOASTed), as in the
 * executor. */
static void index_row(Relation rel, log_index *indexes, int n, TupleTableSlot *slot)
{
    for (int i = 0; i < n; i++) {
        IndexInfo *ii = indexes[i].info;
        if (!ii->ii_ReadyForInserts) continue;
        Datum ivalues[INDEX_MAX_KEYS];
        bool inulls[INDEX_MAX_KEYS];
        FormIndexDatum(ii, slot, NULL, ivalues, inulls);
        index_insert(indexes[i].rel, ivalues, inulls, &slot->tts_tid, rel,
                     ii->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, ii);
    }
}

/* What one trigger call writes: the log (opened), its indexes when the direct write applies
 * (n >= 0), and the values every row of the call shares. */
typedef struct call {
    Relation log;
    log_index *indexes;
    int n; /* -1: the SQL path */
    Datum source, op, session;
    bool session_null;
    TupleDesc desc;    /* the captured table's rows */
    json_shape *shape; /* and how to write them as JSON */
    Datum *values;     /* a row's columns, room for desc->natts (row_json) */
    bool *nulls;
} call;

/* One change: old and/or new image of a row of the captured table. */
static void capture_row(call *c, HeapTuple old, HeapTuple new_)
{
    Datum old_json = old ? row_json(c->shape, old, c->desc, c->values, c->nulls) : (Datum)0;
    Datum new_json = new_ ? row_json(c->shape, new_, c->desc, c->values, c->nulls) : (Datum)0;
    if (c->n < 0) {
        insert_sql(c->source, c->op, old_json, old == NULL, new_json, new_ == NULL, c->session,
                   c->session_null);
        return;
    }
    HeapTuple tup = form_row(c->log, c->source, c->op, old_json, old == NULL, new_json,
                             new_ == NULL, c->session, c->session_null);
    heap_insert(c->log, tup, GetCurrentCommandId(true), 0, NULL);
    if (c->n > 0) {
        TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(c->log), &TTSOpsHeapTuple);
        ExecStoreHeapTuple(tup, slot, false);
        index_row(c->log, c->indexes, c->n, slot);
        ExecDropSingleTupleTableSlot(slot);
    }
    heap_freetuple(tup);
}

/* Rows of one statement's transition table (INSERT: new images, DELETE: old ones), written in
 * batches of BATCH: heap_multi_insert (one WAL record per page filled) then the indexes. */
#define BATCH 1000

static void capture_table(call *c, Tuplestorestate *ts, bool images_are_new)
{
    /* A read pointer of its own: other triggers of the statement read the same store. */
    int ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
    tuplestore_select_read_pointer(ts, ptr);
    tuplestore_rescan(ts);
    TupleTableSlot *in = MakeSingleTupleTableSlot(c->desc, &TTSOpsMinimalTuple);
    if (tuplestore_tuple_count(ts) == 1) {
        /* A single-row statement, the common case: no batch to set up. */
        if (tuplestore_gettupleslot(ts, true, false, in)) {
            HeapTuple row = ExecFetchSlotHeapTuple(in, false, NULL);
            capture_row(c, images_are_new ? NULL : row, images_are_new ? row : NULL);
        }
        ExecDropSingleTupleTableSlot(in);
        return;
    }
    MemoryContext batch_cxt =
        AllocSetContextCreate(CurrentMemoryContext, "herald capture batch", ALLOCSET_DEFAULT_SIZES);
    TupleTableSlot **out = NULL;
    int k = 0;
    bool more;
    do {
        more = tuplestore_gettupleslot(ts, true, false, in);
        MemoryContext outer = MemoryContextSwitchTo(batch_cxt);
        if (more) {
            HeapTuple row = ExecFetchSlotHeapTuple(in, false, NULL);
            if (c->n < 0) {
                capture_row(c, images_are_new ? NULL : row, images_are_new ? row : NULL);
            } else {
                Datum json = row_json(c->shape, row, c->desc, c->values, c->nulls);
                HeapTuple tup = form_row(c->log, c->source, c->op, images_are_new ? (Datum)0 : json,
                                         images_are_new, images_are_new ? json : (Datum)0,
                                         !images_are_new, c->session, c->session_null);
                /* The slots outlive the batch: made in outer. */
                if (out == NULL || out[k] == NULL) {
                    MemoryContextSwitchTo(outer);
                    if (out == NULL) out = palloc0(sizeof *out * BATCH);
                    out[k] = MakeSingleTupleTableSlot(RelationGetDescr(c->log), &TTSOpsHeapTuple);
                    MemoryContextSwitchTo(batch_cxt);
                }
                /* The slot frees the row when cleared (after the batch's index inserts); as it
                 * owns it, heap_multi_insert need not copy it. */
                ExecStoreHeapTuple(tup, out[k++], true);
            }
        }
        if (k == BATCH || (!more && k > 0)) {
            /* No BulkInsertState: its ring of buffers would push the log's new pages out of
             * shared buffers, where herald is about to read them. */
            heap_multi_insert(c->log, out, k, GetCurrentCommandId(true), 0, NULL);
            for (int i = 0; i < k; i++) {
                index_row(c->log, c->indexes, c->n, out[i]);
                ExecClearTuple(out[i]);
            }
            k = 0;
        }
        MemoryContextSwitchTo(outer);
        if (k == 0) MemoryContextReset(batch_cxt);
    } while (more);
    if (out != NULL) {
        for (int i = 0; i < BATCH && out[i] != NULL; i++)
            ExecDropSingleTupleTableSlot(out[i]);
    }
    MemoryContextDelete(batch_cxt);
    ExecDropSingleTupleTableSlot(in);
}

Datum herald_capture(PG_FUNCTION_ARGS)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("herald capture: not called as a trigger")));
    TriggerData *td = (TriggerData *)fcinfo->context;
    TriggerEvent ev = td->tg_event;
    bool row = TRIGGER_FIRED_FOR_ROW(ev);
    Tuplestorestate *table = TRIGGER_FIRED_BY_INSERT(ev)   ? td->tg_newtable
                             : TRIGGER_FIRED_BY_DELETE(ev) ? td->tg_oldtable
                                                           : NULL;
    if (!TRIGGER_FIRED_AFTER(ev) || td->tg_trigger->tgnargs != 1 ||
        !(TRIGGER_FIRED_BY_INSERT(ev) || TRIGGER_FIRED_BY_UPDATE(ev) ||
          TRIGGER_FIRED_BY_DELETE(ev)) ||
        (!row && table == NULL))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("herald capture: must be an AFTER INSERT, UPDATE or DELETE trigger, "
                               "FOR EACH ROW or (INSERT, DELETE) FOR EACH STATEMENT with its "
                               "transition table, with the source name as its one argument")));

    /* A statement that changed no row (a DELETE that matched none) writes nothing. */
    if (!row && tuplestore_tuple_count(table) == 0) return PointerGetDatum(NULL);

    const char *session = session_text();
    call c = {
        .log = open_log(),
        .source = CStringGetTextDatum(td->tg_trigger->tgargs[0]),
        .op = CStringGetTextDatum(TRIGGER_FIRED_BY_INSERT(ev)   ? "INSERT"
                                  : TRIGGER_FIRED_BY_UPDATE(ev) ? "UPDATE"
                                                                : "DELETE"),
        .session = session ? CStringGetTextDatum(session) : (Datum)0,
        .session_null = session == NULL,
        .desc = RelationGetDescr(td->tg_relation),
        .shape = json_shape_of(td->tg_relation),
    };
    c.values = palloc(sizeof *c.values * Max(c.desc->natts, 1));
    c.nulls = palloc(sizeof *c.nulls * Max(c.desc->natts, 1));
    c.n = cache.fast ? open_indexes(c.log, &c.indexes) : -1;
    if (!row)
        capture_table(&c, table, TRIGGER_FIRED_BY_INSERT(ev));
    else if (TRIGGER_FIRED_BY_INSERT(ev))
        capture_row(&c, NULL, td->tg_trigtuple);
    else if (TRIGGER_FIRED_BY_UPDATE(ev))
        capture_row(&c, td->tg_trigtuple, td->tg_newtuple);
    else
        capture_row(&c, td->tg_trigtuple, NULL);
    if (c.n > 0) close_indexes(c.indexes, c.n);
    table_close(c.log, NoLock); /* the lock is kept to the end of the transaction */
    return PointerGetDatum(NULL);
}
