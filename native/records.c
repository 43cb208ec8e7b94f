/* drkit's per-record hash (layout.record_hashes): BLAKE3 of each record's prefix, then
 * its vectors, for many records per call. A ~3 KiB record is only 3-4 chunks, so one
 * hasher per record fills 3-4 of the SIMD lanes; here the full chunks of up to GROUP
 * records go through blake3_hash_many side by side (chunk c of every record at once),
 * then each record's partial last chunk and its parent nodes are compressed one by one,
 * as BLAKE3's tree has them. Called through ctypes, which releases the GIL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blake3/blake3_impl.h"

#define GROUP 64

static void parent_cv(const uint8_t left[32], const uint8_t right[32], uint8_t flags,
                      uint8_t out[32]) {
  uint8_t block[BLAKE3_BLOCK_LEN];
  uint32_t cv[8];
  memcpy(block, left, 32);
  memcpy(block + 32, right, 32);
  memcpy(cv, IV, sizeof cv);
  blake3_compress_in_place(cv, block, BLAKE3_BLOCK_LEN, 0, PARENT | flags);
  store_cv_words(out, cv);
}

/* The chaining value of chunk `counter` (len bytes, 0 < len <= 1024 or the empty
 * message), with ROOT on its last block when the chunk is the whole message. */
static void chunk_cv(const uint8_t *input, size_t len, uint64_t counter, uint8_t root,
                     uint8_t out[32]) {
  uint32_t cv[8];
  uint8_t block[BLAKE3_BLOCK_LEN];
  size_t blocks = len == 0 ? 1 : (len + BLAKE3_BLOCK_LEN - 1) / BLAKE3_BLOCK_LEN;
  memcpy(cv, IV, sizeof cv);
  for (size_t b = 0; b < blocks; b++) {
    size_t take = len - b * BLAKE3_BLOCK_LEN;
    if (take > BLAKE3_BLOCK_LEN) take = BLAKE3_BLOCK_LEN;
    memset(block, 0, sizeof block);
    memcpy(block, input + b * BLAKE3_BLOCK_LEN, take);
    uint8_t flags = (b == 0 ? CHUNK_START : 0) | (b + 1 == blocks ? CHUNK_END | root : 0);
    blake3_compress_in_place(cv, block, (uint8_t)take, counter, flags);
  }
  store_cv_words(out, cv);
}

static size_t pow2_floor(size_t n) {
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/* The chaining value of the subtree over chunks cvs[0..n), n >= 2, ROOT if it is the top. */
static void subtree_cv(const uint8_t *cvs, size_t n, uint8_t root, uint8_t out[32]) {
  uint8_t left[32], right[32];
  size_t l = pow2_floor(n - 1);
  if (l == 1) memcpy(left, cvs, 32); else subtree_cv(cvs, l, 0, left);
  if (n - l == 1) memcpy(right, cvs + l * 32, 32); else subtree_cv(cvs + l * 32, n - l, 0, right);
  parent_cv(left, right, root, out);
}

static size_t chunks_of(size_t len) {
  return len == 0 ? 1 : (len + BLAKE3_CHUNK_LEN - 1) / BLAKE3_CHUNK_LEN;
}

/* Records lo..hi: record i is meta[starts[i]..starts[i+1]) then, for each of the nvec
 * vector columns, vectors[v][i*sizes[v] .. (i+1)*sizes[v]). Its first out_len (<= 32)
 * bytes of BLAKE3 go to out[i*out_len]. Returns 0, or -1 if memory ran out. */
int drkit_hash_records(const uint8_t *meta, const int64_t *starts, size_t lo, size_t hi,
                       const uint8_t *const *vectors, const size_t *sizes, size_t nvec,
                       uint8_t *out, size_t out_len) {
  size_t vec_len = 0;
  for (size_t v = 0; v < nvec; v++) vec_len += sizes[v];
  size_t longest = 0;
  for (size_t i = lo; i < hi; i++) {
    size_t len = (size_t)(starts[i + 1] - starts[i]) + vec_len;
    if (len > longest) longest = len;
  }
  size_t most = chunks_of(longest);
  uint8_t *msg = malloc(GROUP * most * BLAKE3_CHUNK_LEN + 1);
  uint8_t *cvs = malloc(GROUP * most * 32);
  uint8_t *many = malloc(GROUP * 32);
  if (!msg || !cvs || !many) {
    free(msg), free(cvs), free(many);
    return -1;
  }
  for (size_t g = lo; g < hi; g += GROUP) {
    size_t n = hi - g < GROUP ? hi - g : GROUP;
    size_t lens[GROUP];
    const uint8_t *ptrs[GROUP];
    size_t owner[GROUP];
    for (size_t k = 0; k < n; k++) { /* each message laid out whole */
      size_t i = g + k, m = (size_t)(starts[i + 1] - starts[i]);
      uint8_t *at = msg + k * most * BLAKE3_CHUNK_LEN;
      memcpy(at, meta + starts[i], m);
      at += m;
      for (size_t v = 0; v < nvec; v++, at += sizes[v - 1])
        memcpy(at, vectors[v] + i * sizes[v], sizes[v]);
      lens[k] = m + vec_len;
    }
    for (size_t c = 0; c < most; c++) { /* full chunks c of all records, side by side */
      size_t count = 0;
      for (size_t k = 0; k < n; k++)
        if (chunks_of(lens[k]) > 1 && (c + 1) * BLAKE3_CHUNK_LEN <= lens[k]) {
          ptrs[count] = msg + k * most * BLAKE3_CHUNK_LEN + c * BLAKE3_CHUNK_LEN;
          owner[count++] = k;
        }
      if (count == 0) continue;
      blake3_hash_many(ptrs, count, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, IV, c, false, 0,
                       CHUNK_START, CHUNK_END, many);
      for (size_t j = 0; j < count; j++)
        memcpy(cvs + (owner[j] * most + c) * 32, many + j * 32, 32);
    }
    for (size_t k = 0; k < n; k++) {
      const uint8_t *at = msg + k * most * BLAKE3_CHUNK_LEN;
      size_t chunks = chunks_of(lens[k]);
      uint8_t *mine = cvs + k * most * 32, root[32];
      size_t tail = lens[k] - (chunks - 1) * BLAKE3_CHUNK_LEN;
      if (chunks == 1) {
        chunk_cv(at, lens[k], 0, ROOT, root);
      } else {
        if (tail < BLAKE3_CHUNK_LEN)
          chunk_cv(at + (chunks - 1) * BLAKE3_CHUNK_LEN, tail, chunks - 1, 0,
                   mine + (chunks - 1) * 32);
        subtree_cv(mine, chunks, ROOT, root);
      }
      memcpy(out + (g + k) * out_len, root, out_len);
    }
  }
  free(msg), free(cvs), free(many);
  return 0;
}
