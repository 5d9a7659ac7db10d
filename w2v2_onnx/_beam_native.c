/* The frame loop of w2v2_onnx.beam_search.search in C: same beams, same merges, same order, same floats.
 *
 * Optional: built when a C compiler is present at install time (setup.py marks it optional); without it the
 * pure-Python loop in beam_search.py runs instead and gives the same output.
 *
 * Every token that emits text is one character here (beam_search.py checks that before calling), so a
 * string has exactly one path of symbols and tries give each text and each partial word one id:
 *   - partial words live in a trie built per search; each node points into two prefix tries (capsules
 *     made by prefix_trie(): the LM's, every known word's prefix, made once per LM and vocabulary; and the
 *     hotwords', made once per hotword list), or holds -1 where it is no such prefix (nor then are its
 *     extensions). A hotword prefix scores from the hotword trie, a known word's prefix from the LM trie,
 *     and any other as an unknown prefix, by its length (as LanguageModelScorer.score_partial_word does);
 *   - texts (finished words) get ids in the order they are made; Python keeps their strings and scores:
 *         text_child(text_id, word) -> text_score, for the new text (text_id's text followed by word).
 * Id 0 is the empty string for both. A beam's last symbol is -2 before anything was read (Python's None),
 * -1 after a silent token ('') and otherwise the symbol id of its token's text (equal texts share an id).
 *
 * Every floating-point operation is the one the Python loop does, in the same order (additions and
 * a + log(1 + exp(b - a))), so totals, ties and therefore transcripts are identical. Build without
 * floating-point contraction (setup.py passes -ffp-contract=off where the compiler takes it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_SILENT = 0, KIND_SPACE = 1, KIND_CHAR = 2 };
enum { TOTAL_ACOUSTIC = 0, TOTAL_HOTWORDS = 1, TOTAL_LM = 2 };

/* How a step of the frame loop failed. The loop runs without the GIL, so its helpers set no Python error
 * (except the text callback, which holds the GIL while it runs); frames() raises it afterwards. */
typedef enum { FAIL_NONE = 0, FAIL_MEMORY, FAIL_OVERFLOW, FAIL_PYTHON } Failure;

typedef struct {
    int32_t text, part, last, spans, ps0, ps1;
    double score, ts, pscore;
} Beam;

/* Open-addressing map from three int32 keys to an int32 value. A slot is used when its stamp equals the
 * map's current stamp, so the per-frame map is emptied by bumping the stamp. */
typedef struct {
    int32_t a, b, c, value;
    uint32_t stamp;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask, count;
    size_t allocated; /* slots allocated; `mask + 1` of them are in use (see map_clear_for) */
    uint32_t stamp;
} Map;

static uint64_t hash3(int32_t a, int32_t b, int32_t c) {
    uint64_t h = (uint64_t)(uint32_t)a * 0x9E3779B97F4A7C15ULL;
    h ^= (uint64_t)(uint32_t)b * 0xC2B2AE3D27D4EB4FULL;
    h ^= (uint64_t)(uint32_t)c * 0x165667B19E3779F9ULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 32);
}

static int map_init(Map *map, size_t capacity) {
    size_t size = 16;
    while (size < 2 * capacity) size <<= 1;
    map->slots = calloc(size, sizeof(Slot));
    map->mask = size - 1;
    map->allocated = size;
    map->count = 0;
    map->stamp = 1;
    return map->slots ? 0 : -1;
}

/* Empty the map and use only as many of its slots as `entries` keys need (a small table stays in the
 * fastest cache); it must have been made for at least that many. */
static void map_clear_for(Map *map, size_t entries) {
    size_t size = 16;
    while (size < 2 * entries) size <<= 1;
    map->mask = (size < map->allocated ? size : map->allocated) - 1;
    map->count = 0;
    if (++map->stamp == 0) { /* wrapped: really clear */
        memset(map->slots, 0, map->allocated * sizeof(Slot));
        map->stamp = 1;
    }
}

/* The slot of (a, b, c): used (stamp matches) if the key is present, else the empty slot to fill. */
static Slot *map_find(const Map *map, int32_t a, int32_t b, int32_t c) {
    size_t i = (size_t)hash3(a, b, c) & map->mask;
    for (;;) {
        Slot *slot = &map->slots[i];
        if (slot->stamp != map->stamp || (slot->a == a && slot->b == b && slot->c == c)) return slot;
        i = (i + 1) & map->mask;
    }
}

static int map_grow(Map *map) {
    Map bigger;
    if (map_init(&bigger, map->mask + 1) < 0) return -1;
    for (size_t i = 0; i <= map->mask; i++) {
        Slot *slot = &map->slots[i];
        if (slot->stamp != map->stamp) continue;
        Slot *target = map_find(&bigger, slot->a, slot->b, slot->c);
        *target = *slot;
        target->stamp = bigger.stamp;
        bigger.count++;
    }
    free(map->slots);
    *map = bigger;
    return 0;
}

/* Claim an empty slot found by map_find; grows the table (and invalidates slot pointers) when needed. */
static int map_put(Map *map, Slot *slot, int32_t a, int32_t b, int32_t c, int32_t value) {
    slot->a = a;
    slot->b = b;
    slot->c = c;
    slot->value = value;
    slot->stamp = map->stamp;
    if (++map->count * 2 > map->mask + 1) return map_grow(map);
    return 0;
}

/* A growing array of doubles indexed by id (each text's score, as Python returned it). */
typedef struct {
    double *values;
    size_t size;
} Scores;

/* Set scores[id] (id >= 0), growing the array; -1 when out of memory (no Python error set). */
static int scores_set(Scores *scores, size_t id, double value) {
    if (id >= scores->size) {
        size_t size = scores->size ? scores->size : 256;
        while (size <= id) size *= 2;
        double *values = realloc(scores->values, size * sizeof(double));
        if (!values) return -1;
        scores->values = values;
        scores->size = size;
    }
    scores->values[id] = value;
    return 0;
}

/* Grow each of n arrays (of the given item sizes) to hold `size` items; -1 when out of memory. */
static int grow_arrays(void **arrays[], const size_t sizes[], int n, size_t size) {
    for (int i = 0; i < n; i++) {
        void *grown = realloc(*arrays[i], size * sizes[i]);
        if (!grown) return -1;
        *arrays[i] = grown;
    }
    return 0;
}

/* Word spans as linked lists in one arena: node i is (first[i], end[i]) after the list parent[i]. */
typedef struct {
    int32_t *parent, *first, *end;
    size_t count, size;
} Spans;

/* Append a span; its id, or -FAIL_MEMORY / -FAIL_OVERFLOW. */
static int32_t spans_push(Spans *spans, int32_t parent, int32_t first, int32_t end) {
    if (spans->count >= INT32_MAX) return -FAIL_OVERFLOW;
    if (spans->count == spans->size) {
        size_t size = spans->size ? spans->size * 2 : 1024;
        void **arrays[] = {(void **)&spans->parent, (void **)&spans->first, (void **)&spans->end};
        const size_t sizes[] = {sizeof(int32_t), sizeof(int32_t), sizeof(int32_t)};
        if (grow_arrays(arrays, sizes, 3, size) < 0) return -FAIL_MEMORY;
        spans->size = size;
    }
    spans->parent[spans->count] = parent;
    spans->first[spans->count] = first;
    spans->end[spans->count] = end;
    return (int32_t)spans->count++;
}

static double logaddexp(double a, double b) {
    if (a >= b) return a + log(1 + exp(b - a));
    return b + log(1 + exp(a - b));
}

typedef struct {
    double total;
    int32_t index;
} Ranked;

/* Best total first; equal totals keep their order (Python's stable sort with reverse=True). */
static int compare_ranked(const void *x, const void *y) {
    const Ranked *a = x, *b = y;
    if (a->total > b->total) return -1;
    if (a->total < b->total) return 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The trie of partial words: node i is node parent[i]'s string followed by symbol[i]. With few symbols
 * (a character vocabulary) a node's children are found in a row of `pool` (children[i] is its offset, -1
 * until the node is first extended), which stays in cache while its beam is extended frame after frame. */
typedef struct {
    int32_t *parent, *symbol, *length, *lm_prefix, *hot_prefix; /* nodes in the prefix tries, or -1 */
    int32_t *children;
    double *score;
    size_t count, size;
    int32_t *pool;
    size_t pool_count, pool_size;
} Parts;

/* Pool rows are used up to this many symbols; beyond, children are found through a hash map. */
#define MAX_ROW_SYMBOLS 64

/* Append a node; its id, or -FAIL_MEMORY / -FAIL_OVERFLOW. */
static int32_t parts_add(Parts *parts, int32_t parent, int32_t symbol, int32_t length, int32_t lm_prefix,
                         int32_t hot_prefix, double score) {
    if (parts->count >= INT32_MAX) return -FAIL_OVERFLOW;
    if (parts->count == parts->size) {
        size_t size = parts->size ? parts->size * 2 : 4096;
        void **arrays[] = {(void **)&parts->parent, (void **)&parts->symbol, (void **)&parts->length,
                           (void **)&parts->lm_prefix, (void **)&parts->hot_prefix, (void **)&parts->children,
                           (void **)&parts->score};
        const size_t sizes[] = {sizeof(int32_t), sizeof(int32_t), sizeof(int32_t), sizeof(int32_t), sizeof(int32_t),
                                sizeof(int32_t), sizeof(double)};
        if (grow_arrays(arrays, sizes, 7, size) < 0) return -FAIL_MEMORY;
        parts->size = size;
    }
    size_t id = parts->count++;
    parts->parent[id] = parent;
    parts->symbol[id] = symbol;
    parts->length[id] = length;
    parts->lm_prefix[id] = lm_prefix;
    parts->hot_prefix[id] = hot_prefix;
    parts->children[id] = -1;
    parts->score[id] = score;
    return (int32_t)id;
}

/* The known prefixes, shared by every search of one scorer: node i (0 is the empty string) is node
 * parent[i]'s string followed by symbol[i], scored scores[i]; `children` maps (parent, symbol) to i. */
typedef struct {
    Map children;
    double *scores;
    Py_ssize_t count;
} PrefixTrie;

static const char TRIE_NAME[] = "w2v2_onnx._beam_native.PrefixTrie";

static void prefix_trie_free(PyObject *capsule) {
    PrefixTrie *trie = PyCapsule_GetPointer(capsule, TRIE_NAME);
    if (!trie) return;
    free(trie->children.slots);
    free(trie->scores);
    free(trie);
}

/* Node `node`'s child by `symbol` in `trie`, or -1 (also when `node` is -1). */
static int32_t trie_child(const PrefixTrie *trie, int32_t node, int32_t symbol) {
    if (node < 0) return -1;
    const Slot *slot = map_find(&trie->children, node, symbol, 0);
    return slot->stamp == trie->children.stamp ? slot->value : -1;
}

/* Everything one search keeps besides the beams. */
typedef struct {
    Parts parts;
    Map part_memo, text_memo;
    Scores text_scores;
    size_t n_texts;
    Spans spans;
    PyObject *text_cb;
    PyThreadState *released; /* the thread state saved while the loop runs without the GIL */
    const PrefixTrie *lm_trie, *hot_trie;
    const int32_t *codepoints;
    int32_t n_symbols;
    int has_lm;
    double penalty;
    int avg_len;
} State;

static PyObject *part_string(const State *st, int32_t node) {
    int32_t length = st->parts.length[node];
    Py_UCS4 *buffer = PyMem_Malloc((size_t)(length > 0 ? length : 1) * sizeof(Py_UCS4));
    if (!buffer) return PyErr_NoMemory();
    for (int32_t i = node, k = length; i > 0; i = st->parts.parent[i])
        buffer[--k] = (Py_UCS4)st->codepoints[st->parts.symbol[i]];
    PyObject *string = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buffer, length);
    PyMem_Free(buffer);
    return string;
}

/* The partial word `parent` followed by symbol `symbol`: its id, made (and scored) when new. */
static Failure part_child(State *st, int32_t parent, int32_t symbol, int32_t *child) {
    Parts *parts = &st->parts;
    Slot *slot = NULL;
    int32_t row = -1;
    if (st->n_symbols <= MAX_ROW_SYMBOLS) {
        row = parts->children[parent];
        if (row < 0) { /* first extension of this node: give it a row of "no child yet" */
            if (parts->pool_count + (size_t)st->n_symbols > parts->pool_size) {
                size_t size = parts->pool_size ? parts->pool_size * 2 : 65536;
                while (size < parts->pool_count + (size_t)st->n_symbols) size *= 2;
                if (size > INT32_MAX) return FAIL_OVERFLOW;
                int32_t *pool = realloc(parts->pool, size * sizeof(int32_t));
                if (!pool) return FAIL_MEMORY;
                parts->pool = pool;
                parts->pool_size = size;
            }
            row = (int32_t)parts->pool_count;
            parts->pool_count += (size_t)st->n_symbols;
            for (int32_t k = 0; k < st->n_symbols; k++) parts->pool[row + k] = -1;
            parts->children[parent] = row;
        }
        if (parts->pool[row + symbol] >= 0) {
            *child = parts->pool[row + symbol];
            return 0;
        }
    } else {
        slot = map_find(&st->part_memo, parent, symbol, 0);
        if (slot->stamp == st->part_memo.stamp) {
            *child = slot->value;
            return 0;
        }
    }
    const int32_t length = st->parts.length[parent] + 1;
    const int32_t lm_prefix = trie_child(st->lm_trie, st->parts.lm_prefix[parent], symbol);
    const int32_t hot_prefix = trie_child(st->hot_trie, st->parts.hot_prefix[parent], symbol);
    double score;
    if (hot_prefix >= 0) {
        score = st->hot_trie->scores[hot_prefix];
    } else if (!st->has_lm) { /* no hotword's prefix, no LM: no score */
        score = 0.0;
    } else if (lm_prefix >= 0) {
        score = st->lm_trie->scores[lm_prefix];
    } else { /* an unknown prefix, as LanguageModelScorer.score_partial_word scores it */
        score = length > st->avg_len ? st->penalty * (double)length / (double)st->avg_len : st->penalty;
    }
    int32_t id = parts_add(&st->parts, parent, symbol, length, lm_prefix, hot_prefix, score);
    if (id < 0) return (Failure)-id;
    *child = id;
    if (row >= 0) {
        st->parts.pool[row + symbol] = id;
    } else if (map_put(&st->part_memo, slot, parent, symbol, 0, id) < 0) {
        return FAIL_MEMORY;
    }
    return FAIL_NONE;
}

/* Ask Python for the score of `text` followed by the word `part`, taking the GIL for the call. */
static Failure call_text_child(State *st, int32_t text, int32_t part, double *score) {
    PyEval_RestoreThread(st->released);
    Failure failure = FAIL_PYTHON;
    PyObject *word = part_string(st, part);
    PyObject *result = word ? PyObject_CallFunction(st->text_cb, "iN", (int)text, word) : NULL;
    if (result) {
        *score = PyFloat_AsDouble(result);
        Py_DECREF(result);
        if (!(*score == -1.0 && PyErr_Occurred())) failure = FAIL_NONE;
    }
    st->released = PyEval_SaveThread();
    return failure;
}

/* The text `text` followed by the word `part`: its id, made (and scored by Python) when new. */
static Failure text_child(State *st, int32_t text, int32_t part, int32_t *child) {
    Slot *slot = map_find(&st->text_memo, text, part, 0);
    if (slot->stamp == st->text_memo.stamp) {
        *child = slot->value;
        return FAIL_NONE;
    }
    if (st->n_texts >= INT32_MAX) return FAIL_OVERFLOW;
    double score;
    Failure failure = call_text_child(st, text, part, &score);
    if (failure != FAIL_NONE) return failure;
    int32_t id = (int32_t)st->n_texts++;
    if (scores_set(&st->text_scores, (size_t)id, score) < 0) return FAIL_MEMORY;
    *child = id;
    return map_put(&st->text_memo, slot, text, part, 0, id) < 0 ? FAIL_MEMORY : FAIL_NONE;
}

typedef struct {
    Py_buffer buffer;
    int held;
} Held;

static int get_array(PyObject *object, Held *held, const char *name, const char *format, Py_ssize_t itemsize) {
    if (PyObject_GetBuffer(object, &held->buffer, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    held->held = 1;
    const char *actual = held->buffer.format ? held->buffer.format : "B";
    if (actual[0] == '<' || actual[0] == '=' || actual[0] == '@') actual++;
    if (held->buffer.itemsize != itemsize || strcmp(actual, format) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous array of format '%s', got '%s'", name, format,
                     held->buffer.format ? held->buffer.format : "B");
        return -1;
    }
    return 0;
}

static PyObject *spans_tuple(const Spans *spans, int32_t node) {
    Py_ssize_t n = 0;
    for (int32_t i = node; i >= 0; i = spans->parent[i]) n++;
    PyObject *tuple = PyTuple_New(n);
    if (!tuple) return NULL;
    for (int32_t i = node; i >= 0; i = spans->parent[i]) {
        PyObject *span = Py_BuildValue("(ii)", (int)spans->first[i], (int)spans->end[i]);
        if (!span) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, --n, span);
    }
    return tuple;
}

static const char frames_doc[] =
    "frames(log_probs, candidates, offsets, kinds, symbols, codepoints, beam_width, beam_prune_logp,\n"
    "       total_mode, initial_text_score, unknown_prefix_penalty, average_word_length, lm_trie, hotword_trie,\n"
    "       text_child)\n"
    "Run the search over all frames (see beam_search._native_frames); returns the final beams as tuples\n"
    "(text_id, partial_word, last_symbol, word_spans, part_span, score, text_score, part_score).";

static PyObject *frames(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *lp_obj, *cand_obj, *off_obj, *kind_obj, *sym_obj, *code_obj, *lm_trie_obj, *hot_trie_obj, *text_cb;
    int beam_width, total_mode, avg_len;
    double prune_logp, initial_ts, penalty;
    if (!PyArg_ParseTuple(args, "OOOOOOididdiOOO", &lp_obj, &cand_obj, &off_obj, &kind_obj, &sym_obj, &code_obj,
                          &beam_width, &prune_logp, &total_mode, &initial_ts, &penalty, &avg_len, &lm_trie_obj, &hot_trie_obj,
                          &text_cb))
        return NULL;
    if (beam_width < 1 || avg_len < 1 || !PyCallable_Check(text_cb)) {
        PyErr_SetString(PyExc_ValueError, "beam_width and average_word_length must be >= 1, text_child callable");
        return NULL;
    }
    const PrefixTrie *lm_trie = PyCapsule_GetPointer(lm_trie_obj, TRIE_NAME);
    const PrefixTrie *hot_trie = lm_trie ? PyCapsule_GetPointer(hot_trie_obj, TRIE_NAME) : NULL;
    if (!hot_trie) return NULL;

    PyObject *result = NULL;
    Held lp = {0}, cand = {0}, off = {0}, kind = {0}, sym = {0}, code = {0};
    State st = {0};
    Map merged = {0};
    Beam *beams = NULL, *entries = NULL;
    Ranked *ranked = NULL;
    st.lm_trie = lm_trie;
    st.hot_trie = hot_trie;
    st.text_cb = text_cb;
    st.has_lm = total_mode == TOTAL_LM;
    st.penalty = penalty;
    st.avg_len = avg_len;

    if (get_array(lp_obj, &lp, "log_probs", "d", 8) < 0 || get_array(cand_obj, &cand, "candidates", "i", 4) < 0 ||
        get_array(off_obj, &off, "offsets", "i", 4) < 0 || get_array(kind_obj, &kind, "kinds", "i", 4) < 0 ||
        get_array(sym_obj, &sym, "symbols", "i", 4) < 0 || get_array(code_obj, &code, "codepoints", "i", 4) < 0)
        goto done;
    if (lp.buffer.ndim != 2 || kind.buffer.shape[0] != lp.buffer.shape[1] ||
        sym.buffer.shape[0] != lp.buffer.shape[1] || off.buffer.shape[0] != lp.buffer.shape[0] + 1) {
        PyErr_SetString(PyExc_ValueError, "log_probs must be [frames, vocab]; kinds and symbols [vocab]; "
                                          "offsets [frames + 1]");
        goto done;
    }
    const Py_ssize_t n_frames = lp.buffer.shape[0], vocab = lp.buffer.shape[1];
    const double *log_probs = lp.buffer.buf;
    const int32_t *candidates = cand.buffer.buf, *offsets = off.buffer.buf;
    const int32_t *kinds = kind.buffer.buf, *symbols = sym.buffer.buf;
    const Py_ssize_t n_candidates = cand.buffer.shape[0], n_symbols = code.buffer.shape[0];
    st.codepoints = code.buffer.buf;
    if (n_symbols > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many symbols");
        goto done;
    }
    st.n_symbols = (int32_t)n_symbols;
    for (Py_ssize_t v = 0; v < vocab; v++) {
        if (kinds[v] < KIND_SILENT || kinds[v] > KIND_CHAR || symbols[v] >= n_symbols || symbols[v] < -1 ||
            (kinds[v] != KIND_SILENT && symbols[v] < 0)) {
            PyErr_SetString(PyExc_ValueError, "kinds must be 0, 1 or 2 and symbols index codepoints");
            goto done;
        }
    }
    int32_t widest = 1;
    for (Py_ssize_t f = 0; f < n_frames; f++) {
        if (offsets[f] < 0 || offsets[f + 1] < offsets[f] || offsets[f + 1] > n_candidates) {
            PyErr_SetString(PyExc_ValueError, "offsets must rise from 0 to len(candidates)");
            goto done;
        }
        if (offsets[f + 1] - offsets[f] > widest) widest = offsets[f + 1] - offsets[f];
    }
    for (Py_ssize_t i = 0; i < n_candidates; i++) {
        if (candidates[i] < 0 || candidates[i] >= vocab) {
            PyErr_SetString(PyExc_ValueError, "candidates must be token ids below the vocabulary size");
            goto done;
        }
    }

    size_t max_entries = (size_t)beam_width * (size_t)widest;
    beams = malloc((size_t)beam_width * sizeof(Beam));
    entries = malloc(max_entries * sizeof(Beam));
    ranked = malloc(max_entries * sizeof(Ranked));
    if (!beams || !entries || !ranked || map_init(&st.part_memo, 4096) < 0 || map_init(&st.text_memo, 1024) < 0 ||
        map_init(&merged, max_entries) < 0 || parts_add(&st.parts, -1, -1, 0, 0, 0, 0.0) < 0 ||
        scores_set(&st.text_scores, 0, initial_ts) < 0) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    st.n_texts = 1;

    Py_ssize_t n_beams = 1;
    beams[0] = (Beam){0, 0, -2, -1, -1, -1, 0.0, initial_ts, 0.0};
    Failure failure = FAIL_NONE;
    st.released = PyEval_SaveThread(); /* other threads run while this loop does (text_child takes it back) */
    for (Py_ssize_t f = 0; f < n_frames; f++) {
        const double *row = log_probs + f * vocab;
        const int32_t end = (int32_t)(f + 1);
        size_t n_entries = 0;
        map_clear_for(&merged, (size_t)n_beams * (size_t)(offsets[f + 1] - offsets[f]));
        for (int32_t k = offsets[f]; k < offsets[f + 1]; k++) {
            const int32_t token = candidates[k];
            const double p = row[token];
            const int32_t token_kind = kinds[token], symbol = symbols[token];
            for (Py_ssize_t b = 0; b < n_beams; b++) {
                const Beam *beam = &beams[b];
                const double total = beam->score + p;
                Beam entry = *beam;
                entry.score = total;
                if (token_kind == KIND_SILENT) {
                    entry.last = -1;
                } else if (symbol == beam->last) { /* a repeat without a blank in between */
                    entry.ps1 = end;
                } else if (token_kind == KIND_SPACE) {
                    entry.last = symbol;
                    if (beam->part != 0) {
                        if ((failure = text_child(&st, beam->text, beam->part, &entry.text))) goto loop_end;
                        entry.spans = spans_push(&st.spans, beam->spans, beam->ps0, beam->ps1);
                        if (entry.spans < 0) {
                            failure = (Failure)-entry.spans;
                            goto loop_end;
                        }
                    }
                    entry.part = 0;
                    entry.ps0 = entry.ps1 = -1;
                    entry.pscore = 0.0;
                    entry.ts = st.text_scores.values[entry.text];
                } else {
                    entry.last = symbol;
                    if ((failure = part_child(&st, beam->part, symbol, &entry.part))) goto loop_end;
                    entry.ps0 = beam->ps0 < 0 ? (int32_t)f : beam->ps0;
                    entry.ps1 = end;
                    entry.pscore = st.parts.score[entry.part];
                }
                Slot *slot = map_find(&merged, entry.text, entry.part, entry.last);
                if (slot->stamp != merged.stamp) {
                    entries[n_entries] = entry;
                    if (map_put(&merged, slot, entry.text, entry.part, entry.last, (int32_t)n_entries) < 0) {
                        failure = FAIL_MEMORY;
                        goto loop_end;
                    }
                    n_entries++;
                } else { /* merge: add probabilities, keep the spans of the likelier side (new wins ties) */
                    Beam *old = &entries[slot->value];
                    if (total >= old->score) {
                        old->spans = entry.spans;
                        old->ps0 = entry.ps0;
                        old->ps1 = entry.ps1;
                    }
                    old->score = logaddexp(old->score, total);
                }
            }
        }
        /* score, drop those below the pruning floor, keep the best beam_width (stable) */
        double best = -INFINITY;
        for (size_t i = 0; i < n_entries; i++) {
            const Beam *e = &entries[i];
            double total;
            if (total_mode == TOTAL_LM)
                total = e->score + (e->ts + e->pscore);
            else if (total_mode == TOTAL_HOTWORDS)
                total = e->score + e->ts + e->pscore;
            else
                total = e->score;
            ranked[i].total = total;
            ranked[i].index = (int32_t)i;
            if (i == 0 || total > best) best = total;
        }
        const double floor = best + prune_logp;
        size_t n_kept = 0;
        for (size_t i = 0; i < n_entries; i++)
            if (ranked[i].total >= floor) ranked[n_kept++] = ranked[i];
        qsort(ranked, n_kept, sizeof(Ranked), compare_ranked);
        n_beams = n_kept < (size_t)beam_width ? (Py_ssize_t)n_kept : beam_width;
        for (Py_ssize_t b = 0; b < n_beams; b++) beams[b] = entries[ranked[b].index];
    }
loop_end:
    PyEval_RestoreThread(st.released);
    if (failure == FAIL_MEMORY) PyErr_NoMemory();
    if (failure == FAIL_OVERFLOW)
        PyErr_SetString(PyExc_OverflowError, "the search made more than 2^31 texts, partial words or word spans");
    if (failure != FAIL_NONE) goto done; /* FAIL_PYTHON: the callback's exception is set */

    result = PyList_New(n_beams);
    if (!result) goto done;
    for (Py_ssize_t b = 0; b < n_beams; b++) {
        const Beam *beam = &beams[b];
        PyObject *word_spans = spans_tuple(&st.spans, beam->spans);
        PyObject *word_part = word_spans ? part_string(&st, beam->part) : NULL;
        PyObject *item = word_part ? Py_BuildValue("(iNiN(ii)ddd)", (int)beam->text, word_part, (int)beam->last,
                                                   word_spans, (int)beam->ps0, (int)beam->ps1, beam->score,
                                                   beam->ts, beam->pscore)
                                   : NULL;
        if (!item) {
            if (!word_part) Py_XDECREF(word_spans);
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, b, item);
    }

done:
    if (lp.held) PyBuffer_Release(&lp.buffer);
    if (cand.held) PyBuffer_Release(&cand.buffer);
    if (off.held) PyBuffer_Release(&off.buffer);
    if (kind.held) PyBuffer_Release(&kind.buffer);
    if (sym.held) PyBuffer_Release(&sym.buffer);
    if (code.held) PyBuffer_Release(&code.buffer);
    free(st.parts.parent);
    free(st.parts.symbol);
    free(st.parts.length);
    free(st.parts.lm_prefix);
    free(st.parts.hot_prefix);
    free(st.parts.score);
    free(st.part_memo.slots);
    free(st.parts.children);
    free(st.parts.pool);
    free(st.text_memo.slots);
    free(st.text_scores.values);
    free(st.spans.parent);
    free(st.spans.first);
    free(st.spans.end);
    free(merged.slots);
    free(beams);
    free(entries);
    free(ranked);
    return result;
}

static const char prefix_trie_doc[] =
    "prefix_trie(parents, symbols, scores)\n"
    "The known prefixes for frames(): node i >= 1 is node parents[i]'s string followed by symbol symbols[i]\n"
    "(parents[i] < i), scored scores[i]; node 0 is the empty string. Returns an opaque, read-only capsule.";

static PyObject *prefix_trie(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *parent_obj, *symbol_obj, *score_obj, *capsule = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &parent_obj, &symbol_obj, &score_obj)) return NULL;
    Held parents = {0}, symbols = {0}, scores = {0};
    PrefixTrie *trie = NULL;
    if (get_array(parent_obj, &parents, "parents", "i", 4) < 0 || get_array(symbol_obj, &symbols, "symbols", "i", 4) < 0 ||
        get_array(score_obj, &scores, "scores", "d", 8) < 0)
        goto done;
    const Py_ssize_t n = parents.buffer.shape[0];
    const int32_t *parent = parents.buffer.buf, *symbol = symbols.buffer.buf;
    if (n < 1 || n > INT32_MAX || symbols.buffer.shape[0] != n || scores.buffer.shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "parents, symbols and scores must have one equal, non-zero length");
        goto done;
    }
    trie = calloc(1, sizeof(PrefixTrie));
    if (!trie || map_init(&trie->children, (size_t)n) < 0 || !(trie->scores = malloc((size_t)n * sizeof(double)))) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(trie->scores, scores.buffer.buf, (size_t)n * sizeof(double));
    trie->count = n;
    for (Py_ssize_t i = 1; i < n; i++) {
        if (parent[i] < 0 || parent[i] >= i || symbol[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "each node's parent must come before it; symbols must be >= 0");
            goto done;
        }
        Slot *slot = map_find(&trie->children, parent[i], symbol[i], 0);
        if (slot->stamp == trie->children.stamp) {
            PyErr_SetString(PyExc_ValueError, "two nodes have the same parent and symbol");
            goto done;
        }
        if (map_put(&trie->children, slot, parent[i], symbol[i], 0, (int32_t)i) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    capsule = PyCapsule_New(trie, TRIE_NAME, prefix_trie_free);
    if (capsule) trie = NULL;

done:
    if (trie) {
        free(trie->children.slots);
        free(trie->scores);
        free(trie);
    }
    if (parents.held) PyBuffer_Release(&parents.buffer);
    if (symbols.held) PyBuffer_Release(&symbols.buffer);
    if (scores.held) PyBuffer_Release(&scores.buffer);
    return capsule;
}

static PyMethodDef methods[] = {
    {"frames", frames, METH_VARARGS, frames_doc},
    {"prefix_trie", prefix_trie, METH_VARARGS, prefix_trie_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "w2v2_onnx._beam_native",
    "The beam search's frame loop in C (optional; see beam_search.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__beam_native(void) { return PyModule_Create(&module); }
