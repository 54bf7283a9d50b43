/* The statistics pass of gdlab's gram source, compiled ahead of time (when gdlab is built or installed).

   For each chunk of rows [start, stop), q1 = 1 + d + k, the q1 x q1 float64 matrix

       sum over rows i in [start, stop) of s_i u_i u_i^T,   u_i = [1, x_i - K_x, y_i - K_y],

   i.e. [0, 0] = sum s, [0, 1:] = sum s (z - K), [1:, 1:] = sum s (z - K)(z - K)^T, for X float64 or float32 with
   any strides, Y float64, w float64 (or None: s = 1) and the shift K (d + k,). The caller's threads call
   moments() together (the GIL is released here); they share the chunks (see moments()) and the caller adds the
   chunks' results in order.

   How: rows are copied, shifted and weighted, into a tile of TILE rows (row-major, so a row of X is read once and
   contiguously), and the tile's Gram matrix is taken by an 8 x 6 register block of multiply-adds, as in a GEMM
   micro-kernel: for each row of the tile, two 4-wide loads of z[i:i+8] and six broadcasts of z[j:j+6] feed
   twelve 4-wide FMAs. Only the blocks that touch the upper triangle are formed. Each tile's products (sums of
   TILE terms) go into a block total, and every FLUSH tiles the block total into the chunk's total, so a sum over
   a million rows is a sum of sums of at most TILE * FLUSH terms: its rounding stays at a few ulps.

   The kernel is compiled for three x86-64 levels where the compiler can (target_clones: AVX-512, AVX2 + FMA, the
   baseline) and the loader picks the machine's best at import: one build serves every machine. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define TILE 128
#define FLUSH 64
#define MR 8
#define NR 6

#if defined(__GNUC__)
typedef double v4d __attribute__((vector_size(32)));
#define HAVE_VECTORS 1
#endif

#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef MULTIVERSION
#define MULTIVERSION
#endif

static Py_ssize_t round_up(Py_ssize_t a, Py_ssize_t b) { return (a + b - 1) / b * b; }

/* block[qr x qc] += the products of rows i in [0, qr) and columns j in [0, qc) over the tile's TILE rows (only the
   register blocks that reach the upper triangle). */
MULTIVERSION
static void tile_products(const double *restrict zt, Py_ssize_t ld, Py_ssize_t qr, Py_ssize_t qc,
                          double *restrict block)
{
    for (Py_ssize_t i = 0; i < qr; i += MR) {
        for (Py_ssize_t j = i / NR * NR; j < qc; j += NR) {
#ifdef HAVE_VECTORS
            v4d c00 = {0}, c01 = {0}, c02 = {0}, c03 = {0}, c04 = {0}, c05 = {0};
            v4d c10 = {0}, c11 = {0}, c12 = {0}, c13 = {0}, c14 = {0}, c15 = {0};
            const double *row = zt;
            for (int t = 0; t < TILE; t++, row += ld) {
                v4d a0, a1;
                memcpy(&a0, row + i, sizeof a0);
                memcpy(&a1, row + i + 4, sizeof a1);
                double b;
                b = row[j];     c00 += a0 * b; c10 += a1 * b;
                b = row[j + 1]; c01 += a0 * b; c11 += a1 * b;
                b = row[j + 2]; c02 += a0 * b; c12 += a1 * b;
                b = row[j + 3]; c03 += a0 * b; c13 += a1 * b;
                b = row[j + 4]; c04 += a0 * b; c14 += a1 * b;
                b = row[j + 5]; c05 += a0 * b; c15 += a1 * b;
            }
            v4d lo[NR] = {c00, c01, c02, c03, c04, c05};
            v4d hi[NR] = {c10, c11, c12, c13, c14, c15};
            for (int c = 0; c < NR; c++)
                for (int r = 0; r < 4; r++) {
                    block[(i + r) * qc + j + c] += lo[c][r];
                    block[(i + 4 + r) * qc + j + c] += hi[c][r];
                }
#else
            double acc[MR][NR] = {{0}};
            const double *row = zt;
            for (int t = 0; t < TILE; t++, row += ld)
                for (int r = 0; r < MR; r++)
                    for (int c = 0; c < NR; c++)
                        acc[r][c] += row[i + r] * row[j + c];
            for (int r = 0; r < MR; r++)
                for (int c = 0; c < NR; c++)
                    block[(i + r) * qc + j + c] += acc[r][c];
#endif
        }
    }
}

/* One tile of u = sqrt(s) [x - K_x, y - K_y, 1] (the constant column last, so that x lands on an aligned start):
   rows r0 .. r0 + nt of the data into zt (TILE x ld). */
#define DEFINE_FILL(NAME, TYPE)                                                                                 \
    MULTIVERSION                                                                                                \
    static void NAME(const char *X, Py_ssize_t xs0, Py_ssize_t xs1, Py_ssize_t d, const char *Y, Py_ssize_t ys0, \
                     Py_ssize_t ys1, Py_ssize_t k, const char *w, Py_ssize_t ws, const double *restrict shift,   \
                     Py_ssize_t r0, int nt, double *restrict zt, Py_ssize_t ld)                                  \
    {                                                                                                           \
        const int unit = xs1 == (Py_ssize_t)sizeof(TYPE);                                                       \
        for (int t = 0; t < nt; t++) {                                                                          \
            Py_ssize_t r = r0 + t;                                                                              \
            double *restrict z = zt + (Py_ssize_t)t * ld;                                                       \
            const char *xr = X + r * xs0, *yr = Y + r * ys0;                                                    \
            if (unit) {                                                                                         \
                const TYPE *restrict x = (const TYPE *)xr;                                                      \
                for (Py_ssize_t j = 0; j < d; j++) z[j] = (double)x[j] - shift[j];                              \
            } else {                                                                                            \
                for (Py_ssize_t j = 0; j < d; j++) z[j] = (double)*(const TYPE *)(xr + j * xs1) - shift[j];     \
            }                                                                                                   \
            for (Py_ssize_t j = 0; j < k; j++) z[d + j] = *(const double *)(yr + j * ys1) - shift[d + j];       \
            z[d + k] = 1.0;                                                                                     \
            if (w) {                                                                                            \
                double s = sqrt(*(const double *)(w + r * ws));                                                 \
                for (Py_ssize_t j = 0; j <= d + k; j++) z[j] *= s;                                              \
            }                                                                                                   \
        }                                                                                                       \
    }

DEFINE_FILL(fill_f64, double)
DEFINE_FILL(fill_f32, float)

static int check_matrix(Py_buffer *b, const char *name, int ndim, int allow_float32)
{
    const char *f = b->format ? b->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int is64 = strcmp(f, "d") == 0, is32 = strcmp(f, "f") == 0;
    if (b->ndim != ndim || !(is64 || (allow_float32 && is32))) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-D float64%s array", name, ndim,
                     allow_float32 ? " or float32" : "");
        return -1;
    }
    return is32 ? 4 : 8;
}

typedef struct {
    const char *X, *Y, *w;
    const double *shift;
    Py_ssize_t xs0, xs1, ys0, ys1, ws, d, k;
    int xsize;
} data_t;

/* out (q1 x q1) = the moments of rows start .. stop; zt, block and total are the caller's scratch space. */
static void chunk_moments(const data_t *D, Py_ssize_t start, Py_ssize_t stop, double *zt, double *block,
                          double *total, double *out)
{
    Py_ssize_t d = D->d, k = D->k, q1 = 1 + d + k;
    Py_ssize_t qr = round_up(q1, MR), qc = round_up(q1, NR), ld = round_up(qr > qc ? qr : qc, 4);
    memset(zt, 0, (size_t)TILE * ld * sizeof(double));
    memset(block, 0, (size_t)qr * qc * sizeof(double));
    memset(total, 0, (size_t)qr * qc * sizeof(double));
    int n_tiles = 0;
    for (Py_ssize_t r0 = start; r0 < stop; r0 += TILE) {
        int nt = (int)(stop - r0 < TILE ? stop - r0 : TILE);
        if (D->xsize == 8)
            fill_f64(D->X, D->xs0, D->xs1, d, D->Y, D->ys0, D->ys1, k, D->w, D->ws, D->shift, r0, nt, zt, ld);
        else
            fill_f32(D->X, D->xs0, D->xs1, d, D->Y, D->ys0, D->ys1, k, D->w, D->ws, D->shift, r0, nt, zt, ld);
        if (nt < TILE) memset(zt + (Py_ssize_t)nt * ld, 0, (size_t)(TILE - nt) * ld * sizeof(double));
        tile_products(zt, ld, qr, qc, block);
        if (++n_tiles == FLUSH) {
            for (Py_ssize_t e = 0; e < qr * qc; e++) { total[e] += block[e]; block[e] = 0.0; }
            n_tiles = 0;
        }
    }
    for (Py_ssize_t e = 0; e < qr * qc; e++) total[e] += block[e];
    for (Py_ssize_t r = 0; r < q1; r++)  /* tile position p holds output index p + 1, the last one index 0 */
        for (Py_ssize_t c = r; c < q1; c++) {
            Py_ssize_t a = c == q1 - 1 ? 0 : r + 1, b = c == q1 - 1 ? (r == q1 - 1 ? 0 : r + 1) : c + 1;
            out[a * q1 + b] = out[b * q1 + a] = total[r * qc + c];
        }
}

/* moments(X, Y, w, shift, chunk_rows, counter, out): out[c] = the moments of rows c * chunk_rows ..
   (c + 1) * chunk_rows, for the chunks c that this call takes. Any number of threads may call it at once with the
   same counter (a one-element int64 array, starting at 0): each takes the next chunk not yet taken, so a thread
   that gets less of the machine takes fewer chunks, while the chunks, and so the caller's sum over them in
   order, are the same whatever the number of threads. */
static PyObject *moments(PyObject *self, PyObject *args)
{
    PyObject *ox, *oy, *ow, *oshift, *ocount, *oout;
    Py_ssize_t chunk_rows;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOnOO", &ox, &oy, &ow, &oshift, &chunk_rows, &ocount, &oout)) return NULL;
    Py_buffer bx = {0}, by = {0}, bw = {0}, bs = {0}, bc = {0}, bo = {0};
    PyObject *result = NULL;
    int have_w = ow != Py_None;
    if (PyObject_GetBuffer(ox, &bx, PyBUF_RECORDS_RO) < 0) return NULL;
    if (PyObject_GetBuffer(oy, &by, PyBUF_RECORDS_RO) < 0) goto done;
    if (have_w && PyObject_GetBuffer(ow, &bw, PyBUF_RECORDS_RO) < 0) goto done;
    if (PyObject_GetBuffer(oshift, &bs, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(ocount, &bc, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) goto done;
    if (PyObject_GetBuffer(oout, &bo, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) goto done;
    int xsize = check_matrix(&bx, "X", 2, 1);
    if (xsize < 0 || check_matrix(&by, "Y", 2, 0) < 0 || (have_w && check_matrix(&bw, "w", 1, 0) < 0) ||
        check_matrix(&bs, "shift", 1, 0) < 0 || check_matrix(&bo, "out", 3, 0) < 0)
        goto done;
    Py_ssize_t m = bx.shape[0], d = bx.shape[1], k = by.shape[1], q1 = 1 + d + k;
    Py_ssize_t n_chunks = chunk_rows > 0 ? (m + chunk_rows - 1) / chunk_rows : -1;
    if (by.shape[0] != m || (have_w && bw.shape[0] != m) || bs.shape[0] != d + k || bo.shape[0] != n_chunks ||
        bo.shape[1] != q1 || bo.shape[2] != q1 || bc.len != (Py_ssize_t)sizeof(long long)) {
        PyErr_SetString(PyExc_ValueError, "moments: inconsistent shapes, chunk size or counter");
        goto done;
    }
    Py_ssize_t qr = round_up(q1, MR), qc = round_up(q1, NR), ld = round_up(qr > qc ? qr : qc, 4);
    size_t sums_bytes = (size_t)qr * qc * sizeof(double);
    double *zt = aligned_alloc(64, (size_t)round_up(TILE * ld * (Py_ssize_t)sizeof(double), 64));
    double *block = malloc(sums_bytes), *total = malloc(sums_bytes);
    if (!zt || !block || !total) {
        free(zt); free(block); free(total);
        PyErr_NoMemory();
        goto done;
    }
    data_t D = {bx.buf, by.buf, have_w ? bw.buf : NULL, bs.buf, bx.strides[0], bx.strides[1], by.strides[0],
                by.strides[1], have_w ? bw.strides[0] : 0, d, k, xsize};
    long long *counter = bc.buf;
    double *out = bo.buf;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        long long c = __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
        if (c >= n_chunks) break;
        Py_ssize_t start = (Py_ssize_t)c * chunk_rows, stop = start + chunk_rows < m ? start + chunk_rows : m;
        chunk_moments(&D, start, stop, zt, block, total, out + (Py_ssize_t)c * q1 * q1);
    }
    Py_END_ALLOW_THREADS
    free(zt); free(block); free(total);
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    PyBuffer_Release(&bw);
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bc);
    PyBuffer_Release(&bo);
    return result;
}

static PyMethodDef methods[] = {
    {"moments", moments, METH_VARARGS,
     "moments(X, Y, w, shift, chunk_rows, counter, out): the shifted second moments of the chunks of rows this "
     "call takes (see _gram_pass.c)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gram_pass",
                                    "gdlab's statistics pass, compiled ahead of time (see _gram_pass.c).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__gram_pass(void)
{
    PyObject *mod = PyModule_Create(&module);
    if (mod && (PyModule_AddIntConstant(mod, "TILE", TILE) < 0 || PyModule_AddIntConstant(mod, "FLUSH", FLUSH) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
