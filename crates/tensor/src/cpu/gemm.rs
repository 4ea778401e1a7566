//! f32 matrix products through the `gemm` crate (packed, SIMD, rayon), behind bounds-checked
//! strided views so that callers never touch raw pointers.
//!
//! Every CPU GEMM in the crate (linear, attention, convolutions) goes through `matmul`, so the
//! accumulation is f32 everywhere: f16/bf16 operands are converted to f32 before they get here.

/// A read-only f32 matrix: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides. Panics if an element would lie outside `data` (a bug in the
    /// caller's shape arithmetic, never a property of user input: ops validate shapes first).
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Mat<'a> {
        assert!(
            fits(data.len(), rows, cols, rs, cs),
            "gemm view {rows}×{cols} (strides {rs}, {cs}) overruns {} elements",
            data.len()
        );
        Mat {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The transpose (free: swaps the strides).
    pub fn t(self) -> Mat<'a> {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A mutable f32 matrix: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatMut<'a> {
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        MatMut::strided(data, rows, cols, cols, 1)
    }

    /// See `Mat::strided`. Rows must not alias each other (`rs ≥ cols·cs` or the transpose).
    pub fn strided(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> MatMut<'a> {
        assert!(
            fits(data.len(), rows, cols, rs, cs),
            "gemm output {rows}×{cols} (strides {rs}, {cs}) overruns {} elements",
            data.len()
        );
        assert!(
            rows <= 1 || cols <= 1 || rs >= cols * cs || cs >= rows * rs,
            "gemm output strides alias"
        );
        MatMut {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// Whether one product may use several threads. Inside an outer rayon loop (attention blocks,
/// sparse-conv row blocks) the outer loop already fills the cores, so products stay serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Par {
    Serial,
    Rayon,
}

/// `c = a·b` (or `c += a·b` when `accumulate`), f32 accumulation.
pub fn matmul(c: MatMut<'_>, a: Mat<'_>, b: Mat<'_>, accumulate: bool, par: Par) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "gemm shapes: a {m}×{k}, b {}×{n}, c {}×{}",
        b.rows,
        c.rows,
        c.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: the gemm crate's k = 0 path is not documented, so do it here.
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c.data[i * c.rs + j * c.cs] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = match par {
        Par::Serial => gemm::Parallelism::None,
        Par::Rayon => gemm::Parallelism::Rayon(rayon::current_num_threads()),
    };
    // SAFETY: `fits` checked that every addressed element lies inside its slice, the output
    // strides do not alias, and `c` is borrowed mutably so it cannot overlap `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            c.cs as isize,
            c.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Convenience: row-major `a [m×k]` times the transpose of row-major `w [n×k]` into a new
/// row-major `[m×n]` buffer (the shape of a linear layer).
pub fn matmul_a_bt(a: &[f32], w: &[f32], m: usize, k: usize, n: usize, par: Par) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    matmul(
        MatMut::row_major(&mut out, m, n),
        Mat::row_major(a, m, k),
        Mat::row_major(w, n, k).t(),
        false,
        par,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum();
            }
        }
        c
    }

    #[test]
    fn strided_products_and_accumulation_match_naive() {
        let (m, k, n) = (37, 53, 29);
        let a = crate::testing::random_vec(m * k, 1);
        let b = crate::testing::random_vec(k * n, 2);
        let want = naive(&a, &b, m, k, n);
        // Output written transposed (column-major) exercises the stride handling.
        let mut ct = vec![0f32; m * n];
        matmul(
            MatMut::strided(&mut ct, m, n, 1, m),
            Mat::row_major(&a, m, k),
            Mat::row_major(&b, k, n),
            false,
            Par::Rayon,
        );
        // Accumulating a second time doubles the result.
        let mut c2 = vec![0f32; m * n];
        for _ in 0..2 {
            matmul(
                MatMut::row_major(&mut c2, m, n),
                Mat::row_major(&a, m, k),
                Mat::row_major(&b, k, n),
                true,
                Par::Serial,
            );
        }
        // Sums of 53 products of values in [-1, 1): f32 error ≤ k·2⁻²⁴·Σ|a·b| ≤ 53·6e-8·53.
        let tol = 53.0 * 53.0 * 6e-8;
        for i in 0..m {
            for j in 0..n {
                let w = want[i * n + j];
                assert!((ct[j * m + i] as f64 - w).abs() <= tol, "({i},{j})");
                assert!((c2[i * n + j] as f64 - 2.0 * w).abs() <= 2.0 * tol);
            }
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let mut c = vec![5f32; 6];
        matmul(
            MatMut::row_major(&mut c, 2, 3),
            Mat::row_major(&[], 2, 0),
            Mat::row_major(&[], 0, 3),
            false,
            Par::Serial,
        );
        assert_eq!(c, vec![0.0; 6]);
    }
}
