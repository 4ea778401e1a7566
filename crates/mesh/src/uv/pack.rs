//! Packing flattened charts into one square atlas page. Each chart is described per texel
//! column by the rows its outline spans there, grown by the padding. Charts go tallest first
//! (lying down: longer side of their smallest rectangle along u); a cursor runs along the page
//! width, and each chart takes the lowest place at the cursor where it meets nothing placed
//! (holes under earlier charts included), in whichever of its four quarter-turn orientations
//! ends lowest (never mirrored). The density is the highest at which everything fits, to
//! 0.1 % (each trial predicts the density that fills the page: 5–6 trials on the meshes in
//! BENCHMARKS.md).
//!
//! Why our own: uvunwrap's automatic density rasterises every chart at each of up to 24
//! trial densities, one trial after another (~0.7–0.9 s of one core on a 1 M-face asset), and
//! its segmentation, validation and output passes over our charts cost as much again. A trial
//! here is a pass over the charts' outlines. The price is atlas density: uvunwrap's
//! fold-and-push packing (after TABI) nests shapes more tightly (res-1024 sphere at 4096²:
//! 0.584 of the page covered against its 0.630; bumpy torus 0.477 against 0.531; BENCHMARKS.md,
//! "UV packing").

use rayon::prelude::*;

use crate::error::MeshError;

/// A chart's bounding rectangle in world units, and how to put its UVs into it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartFrame {
    /// Rotation (cos, sin) applied to the chart's UVs (already scaled to world units).
    pub rotation: [f64; 2],
    /// Lower corner of the rotated UVs.
    pub min: [f64; 2],
    /// Width ≥ height, world units.
    pub size: [f64; 2],
    /// The chart's convex hull in the frame (`local` coordinates, inside `[0, size]`).
    pub hull: Vec<[f64; 2]>,
    /// The chart's outline in the frame: its boundary edges (the hull's edges when the chart
    /// was given as points). A column's rows inside the chart lie between its outline's.
    pub outline: Vec<[[f64; 2]; 2]>,
}

impl ChartFrame {
    /// `fit`, with the chart's outline given as edges between `points` (its boundary edges,
    /// e.g. the edges only one of its triangles uses).
    pub fn fit_outline(points: &[[f64; 2]], edges: &[[u32; 2]]) -> ChartFrame {
        let mut frame = Self::fit(points);
        if !edges.is_empty() {
            frame.outline = edges
                .iter()
                .map(|e| e.map(|v| frame.local(points[v as usize])))
                .collect();
        }
        frame
    }

    /// The smallest-area bounding rectangle of `points` (a chart's UVs in world units), turned
    /// so that its longer side runs along u (rows then stay low).
    pub fn fit(points: &[[f64; 2]]) -> ChartFrame {
        let hull = convex_hull(points);
        let mut best = (f64::INFINITY, [1.0, 0.0], [0.0; 2], [0.0; 2]);
        let n = hull.len();
        // The minimum-area rectangle has a side along one of the hull's edges; a hull of one
        // or two points has no area, so its first edge (or none) will do.
        for i in 0..n.max(1) {
            let dir = if n >= 2 {
                let (a, b) = (hull[i], hull[(i + 1) % n]);
                let d = [b[0] - a[0], b[1] - a[1]];
                let l = (d[0] * d[0] + d[1] * d[1]).sqrt();
                if !(l > 0.0) {
                    continue;
                }
                [d[0] / l, d[1] / l]
            } else {
                [1.0, 0.0]
            };
            let (lo, hi) = extent(&hull, dir);
            let area = (hi[0] - lo[0]) * (hi[1] - lo[1]);
            if area < best.0 {
                best = (area, dir, lo, [hi[0] - lo[0], hi[1] - lo[1]]);
            }
        }
        let (_, mut rot, mut min, mut size) = best;
        if !size[0].is_finite() {
            // No usable hull edge (every point the same): a point chart.
            (rot, size) = ([1.0, 0.0], [0.0, 0.0]);
            min = points.first().copied().unwrap_or([0.0; 2]);
        }
        if size[1] > size[0] {
            // A quarter turn: u' = v, v' = −u.
            rot = [rot[1], -rot[0]];
            let (lo, hi) = extent(&hull, rot);
            min = lo;
            size = [hi[0] - lo[0], hi[1] - lo[1]];
        }
        let mut frame = ChartFrame {
            rotation: rot,
            min,
            size,
            hull: Vec::new(),
            outline: Vec::new(),
        };
        frame.hull = hull.iter().map(|&p| frame.local(p)).collect();
        let n = frame.hull.len();
        frame.outline = (0..n)
            .map(|i| [frame.hull[i], frame.hull[(i + 1) % n]])
            .collect();
        frame
    }

    /// A `w` × `h` rectangle chart.
    #[cfg(test)]
    pub fn rectangle(w: f64, h: f64) -> ChartFrame {
        ChartFrame {
            rotation: [1.0, 0.0],
            min: [0.0; 2],
            size: [w, h],
            hull: vec![[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]],
            outline: vec![
                [[0.0, 0.0], [w, 0.0]],
                [[w, 0.0], [w, h]],
                [[w, h], [0.0, h]],
                [[0.0, h], [0.0, 0.0]],
            ],
        }
    }

    /// The frame turned by `k` quarter turns of the four a chart may be packed in (0: as is,
    /// 1: half a turn, 2: a quarter turn, 3: three quarters), outline and size with it. Never
    /// mirrored: that would flip the chart's UV winding.
    fn oriented(&self, k: u8) -> ChartFrame {
        let size = match k {
            2 | 3 => [self.size[1], self.size[0]],
            _ => self.size,
        };
        ChartFrame {
            outline: self
                .outline
                .iter()
                .map(|e| e.map(|p| orient(k, self.size, p)))
                .collect(),
            size,
            ..self.clone()
        }
    }

    /// Area of the hull, world units².
    pub fn hull_area(&self) -> f64 {
        let h = &self.hull;
        (0..h.len())
            .map(|i| {
                let (p, q) = (h[i], h[(i + 1) % h.len()]);
                p[0] * q[1] - q[0] * p[1]
            })
            .sum::<f64>()
            .abs()
            * 0.5
    }

    /// `p` in the frame: rotated and moved to the rectangle's corner (world units).
    pub fn local(&self, p: [f64; 2]) -> [f64; 2] {
        let [c, s] = self.rotation;
        let r = [c * p[0] + s * p[1], -s * p[0] + c * p[1]];
        [r[0] - self.min[0], r[1] - self.min[1]]
    }
}

/// Lower and upper corners of `points` rotated by `(c, s)` (u along `(c, s)`).
fn extent(points: &[[f64; 2]], [c, s]: [f64; 2]) -> ([f64; 2], [f64; 2]) {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for p in points {
        let r = [c * p[0] + s * p[1], -s * p[0] + c * p[1]];
        for k in 0..2 {
            lo[k] = lo[k].min(r[k]);
            hi[k] = hi[k].max(r[k]);
        }
    }
    (lo, hi)
}

/// Convex hull, counter-clockwise, without collinear points (Andrew's monotone chain).
fn convex_hull(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut p: Vec<[f64; 2]> = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let turn = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f64; 2]> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f64; 2]>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && turn(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        // The last point of each half is the first of the other.
        hull.pop();
    }
    hull
}

/// `p` (frame coordinates of a chart of `size`) after `k` quarter turns, moved back into the
/// positive quadrant (see `ChartFrame::oriented`).
fn orient(k: u8, size: [f64; 2], p: [f64; 2]) -> [f64; 2] {
    let [w, h] = size;
    match k {
        0 => p,
        1 => [w - p[0], h - p[1]],
        2 => [p[1], w - p[0]],
        _ => [h - p[1], p[0]],
    }
}

/// Where each chart went: texels per world unit, each chart box's lower corner (texels, at
/// its padding's outer edge) and its orientation (`ChartFrame::oriented`).
#[derive(Clone, Debug, PartialEq)]
pub struct Packing {
    pub texels_per_unit: f64,
    pub corners: Vec<[u32; 2]>,
    pub orientations: Vec<u8>,
    pub padding: u32,
}

impl Packing {
    /// Page texel coordinates of `p` (frame coordinates) of chart `i`, whose frame is `frame`.
    pub fn to_page(&self, i: usize, frame: &ChartFrame, p: [f64; 2]) -> [f64; 2] {
        let q = orient(self.orientations[i], frame.size, p);
        let pad = self.padding as f64;
        let c = self.corners[i];
        [
            c[0] as f64 + pad + q[0] * self.texels_per_unit,
            c[1] as f64 + pad + q[1] * self.texels_per_unit,
        ]
    }
}

/// Texels a side of `extent` world units takes at density `s`, padding included.
fn texels(extent: f64, s: f64, padding: u32) -> u32 {
    ((extent * s).ceil().max(1.0) as u64 + 2 * padding as u64).min(u32::MAX as u64) as u32
}

/// What a chart occupies at one density, in its box (texels, padding included): per column
/// the rows `bottom[c]..top[c]` (nothing where `bottom ≥ top`).
struct Profile {
    w: usize,
    /// Highest `top` (one past the chart's highest occupied row).
    height: u32,
    bottom: Vec<u32>,
    top: Vec<u32>,
}

impl Profile {
    /// The chart at density `s`, grown by `padding` texels every way.
    fn new(frame: &ChartFrame, s: f64, padding: u32) -> Profile {
        let w = texels(frame.size[0], s, padding) as usize;
        let (lo, hi) = spans(&frame.outline, s, w - 2 * padding as usize);
        let (bottom, top) = grown(&lo, &hi, padding);
        let height = top.iter().copied().max().unwrap_or(0);
        Profile {
            w,
            height,
            bottom,
            top,
        }
    }
}

/// Per content column (`len` of them), the lowest and highest row that `outline` reaches there
/// (content texels, no padding): a column's part of the chart lies between them.
fn spans(outline: &[[[f64; 2]; 2]], s: f64, len: usize) -> (Vec<f64>, Vec<f64>) {
    let mut lo = vec![f64::INFINITY; len];
    let mut hi = vec![f64::NEG_INFINITY; len];
    let last = len as f64 - 1.0;
    let mut cover = |x0: f64, x1: f64, y0: f64, y1: f64| {
        let first = x0.floor().clamp(0.0, last);
        let end = (x1.ceil() - 1.0).clamp(first, last);
        for k in first as usize..=end as usize {
            lo[k] = lo[k].min(y0.min(y1));
            hi[k] = hi[k].max(y0.max(y1));
        }
    };
    if outline.is_empty() {
        // A point chart.
        cover(0.0, 0.0, 0.0, 0.0);
    }
    for &[p, q] in outline {
        let (p, q) = if p[0] <= q[0] { (p, q) } else { (q, p) };
        let (px, qx) = (p[0] * s, q[0] * s);
        let (py, qy) = (p[1] * s, q[1] * s);
        if qx - px < 1.0 {
            cover(px, qx, py, qy);
            continue;
        }
        // Column by column along the edge: its rows at a column's two sides bound it there.
        let at = |x: f64| py + (qy - py) * ((x - px) / (qx - px));
        let mut x = px;
        while x < qx {
            let next = (x.floor() + 1.0).min(qx);
            cover(x, next, at(x), at(next));
            x = next;
        }
    }
    (lo, hi)
}

/// `spans` as box rows grown by `pad` every way: per box column, first row and one past the
/// last.
fn grown(lo: &[f64], hi: &[f64], pad: u32) -> (Vec<u32>, Vec<u32>) {
    let n = lo.len() + 2 * pad as usize;
    let mut bottom = vec![u32::MAX; n];
    let mut top = vec![0u32; n];
    for (k, (&l, &h)) in lo.iter().zip(hi).enumerate() {
        if l > h {
            continue;
        }
        let b = l.floor().max(0.0) as u32;
        let t = (h.ceil() as u32).max(b + 1) + 2 * pad;
        for d in k..=k + 2 * pad as usize {
            bottom[d] = bottom[d].min(b);
            top[d] = top[d].max(t);
        }
    }
    (bottom, top)
}

/// Occupied rows of each page column, as sorted disjoint `[start, end)` runs, and each
/// column's highest occupied row (most charts land on top of a column's stack: checked first).
struct Columns {
    runs: Vec<Vec<[u32; 2]>>,
    top: Vec<u32>,
}

impl Columns {
    fn new(width: usize) -> Columns {
        Columns {
            runs: vec![Vec::new(); width],
            top: vec![0; width],
        }
    }

    /// Whether rows `a..b` of column `c` are free; if not, the end of the first run in them.
    fn blocked(&self, c: usize, a: u32, b: u32) -> Option<u32> {
        if a >= self.top[c] {
            return None;
        }
        let runs = &self.runs[c];
        let k = runs.partition_point(|r| r[1] <= a);
        runs.get(k).filter(|r| r[0] < b).map(|r| r[1])
    }

    /// Marks rows `a..b` of column `c` occupied (free before), merging with touching runs.
    fn fill(&mut self, c: usize, a: u32, b: u32) {
        let runs = &mut self.runs[c];
        if a >= self.top[c] {
            self.top[c] = b;
            match runs.last_mut() {
                Some(last) if last[1] == a => last[1] = b,
                _ => runs.push([a, b]),
            }
            return;
        }
        let k = runs.partition_point(|r| r[1] < a);
        let joins_prev = k < runs.len() && runs[k][1] == a;
        let (k, a) = if joins_prev { (k, runs[k][0]) } else { (k, a) };
        let end = if joins_prev { k + 1 } else { k };
        let joins_next = end < runs.len() && runs[end][0] == b;
        let b = if joins_next { runs[end][1] } else { b };
        let last = if joins_next { end + 1 } else { end };
        runs.splice(k..last, [[a, b]]);
    }
}

/// Lowest row at which `p` fits with its box's left edge at column `x`, if any below `page`.
fn lowest_fit(cols: &Columns, x: usize, p: &Profile, page: u32) -> Option<u32> {
    let height = p.height;
    let mut y = 0u32;
    'search: loop {
        if y as u64 + height as u64 > page as u64 {
            return None;
        }
        for c in 0..p.w {
            if p.bottom[c] < p.top[c]
                && let Some(end) = cols.blocked(x + c, y + p.bottom[c], y + p.top[c])
            {
                // Up just past what is in the way there, and check every column again.
                y = end - p.bottom[c];
                continue 'search;
            }
        }
        return Some(y);
    }
}

/// Placement of `frames` (in `order`, tallest first) at density `s` on a page `page` texels
/// wide and unbounded below: a cursor runs along the page width, and each chart goes to the
/// lowest place at the cursor where its outline (grown by the padding) meets nothing placed,
/// holes under earlier charts included (placement is offline: nothing has to slide there), in
/// whichever of its four orientations ends lowest. Returns the corners, orientations and the
/// height used; `None` when a chart is wider than the page every way.
fn place(
    frames: &[[ChartFrame; 4]],
    order: &[u32],
    s: f64,
    page: u32,
    padding: u32,
) -> Option<(Vec<[u32; 2]>, Vec<u8>, u32)> {
    // The profiles are independent of each other: made in parallel, placed in order.
    let profiles: Vec<[Profile; 4]> = order
        .par_iter()
        .map(|&i| std::array::from_fn(|k| Profile::new(&frames[i as usize][k], s, padding)))
        .collect();
    let mut corners = vec![[0u32; 2]; frames.len()];
    let mut orientations = vec![0u8; frames.len()];
    let mut cols = Columns::new(page as usize);
    let (mut x, mut used) = (0usize, 0u32);
    for (&i, ps) in order.iter().zip(&profiles) {
        let narrowest = ps.iter().map(|p| p.w).min().unwrap_or(0);
        if narrowest > page as usize {
            return None;
        }
        // A new pass when the chart does not fit lying down (squeezing it in standing up
        // would raise the pass's line).
        if x + ps[0].w > page as usize {
            x = 0;
        }
        // (top, y, orientation)
        let mut best: Option<(u32, u32, usize)> = None;
        for (k, p) in ps.iter().enumerate() {
            if x + p.w > page as usize {
                continue;
            }
            let y = lowest_fit(&cols, x, p, u32::MAX)?;
            let top = y + p.height;
            if best.is_none_or(|b| top < b.0) {
                best = Some((top, y, k));
            }
        }
        let (top, y, k) = best?;
        let p = &ps[k];
        for c in 0..p.w {
            if p.bottom[c] < p.top[c] {
                cols.fill(x + c, y + p.bottom[c], y + p.top[c]);
            }
        }
        used = used.max(top);
        corners[i as usize] = [x as u32, y];
        orientations[i as usize] = k as u8;
        x += p.w;
    }
    Some((corners, orientations, used))
}

/// Each frame in its four orientations (`ChartFrame::oriented`).
fn all_orientations(frames: &[ChartFrame]) -> Vec<[ChartFrame; 4]> {
    frames
        .par_iter()
        .map(|f| std::array::from_fn(|k| f.oriented(k as u8)))
        .collect()
}

/// Chart indices, tallest first (then widest); ties keep the input order.
fn tallest_first(frames: &[ChartFrame]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..frames.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (&frames[a as usize], &frames[b as usize]);
        fb.size[1]
            .total_cmp(&fa.size[1])
            .then(fb.size[0].total_cmp(&fa.size[0]))
    });
    order
}

/// The densest packing of `frames` on one `page`² page with `padding` empty texels around
/// each chart's hull; deterministic (ties in height keep the input order).
pub fn pack(frames: &[ChartFrame], page: u32, padding: u32) -> Result<Packing, MeshError> {
    let oriented = all_orientations(frames);
    let order = tallest_first(frames);
    let area: f64 = frames.iter().map(ChartFrame::hull_area).sum();
    let longest = frames.iter().map(|f| f.size[0]).fold(0.0, f64::max);
    // Upper bounds: the charts' area filling the page, the longest side spanning it.
    let mut hi = f64::INFINITY;
    if area > 0.0 {
        hi = hi.min(page as f64 / area.sqrt());
    }
    if longest > 0.0 {
        hi = hi.min(page as f64 / longest);
    }
    if !hi.is_finite() {
        // Every chart is a point: one texel each.
        hi = 1.0;
    }
    // Below this even one texel per chart does not fit.
    let floor = hi * 1e-9;
    // The height a placement needs grows about with the density squared, so each trial
    // predicts the density that just fills the page (as uvunwrap's row packing does); a
    // prediction outside the bracket of densities known to fit / not to fit is replaced by
    // the bracket's middle. Heights step by whole rows, so the last trials are bisection.
    // The densest placement that fitted is kept (placement is not quite monotone in the
    // density: sides round up).
    let (mut lo, mut best) = (0.0f64, None);
    let mut s = 0.85 * hi;
    for _ in 0..64 {
        let trial = place(&oriented, &order, s, page, padding);
        let used = trial.as_ref().map_or(u32::MAX, |t| t.2.max(1));
        if used <= page {
            lo = s;
            best = trial.map(|t| (s, t.0, t.1));
        } else {
            hi = s;
        }
        if best.is_some() && hi <= lo * (1.0 + 1e-3) {
            break;
        }
        let predicted = s * (page as f64 / used as f64).sqrt();
        s = if predicted > lo * 1.0005 && predicted < hi / 1.0005 {
            predicted
        } else if lo > 0.0 {
            (lo * hi).sqrt()
        } else {
            0.5 * hi
        };
        if s < floor {
            break;
        }
    }
    let Some(best) = best else {
        return Err(MeshError::Unwrap(format!(
            "{} charts with {padding}-texel padding do not fit one {page}² page",
            frames.len()
        )));
    };
    Ok(Packing {
        texels_per_unit: best.0,
        corners: best.1,
        orientations: best.2,
        padding,
    })
}

/// [`pack`] with `padding`, or where the charts do not fit one page that way, with one texel
/// of padding: a surface cut into very many charts (hundreds of thousands: a noisy decoder
/// output) then still gets its atlas, with seams that may bleed slightly under filtering,
/// instead of failing the export. `Packing::padding` says which was used.
pub fn pack_or_tighten(
    frames: &[ChartFrame],
    page: u32,
    padding: u32,
) -> Result<Packing, MeshError> {
    match pack(frames, page, padding) {
        Err(MeshError::Unwrap(_)) if padding > 1 => pack(frames, page, 1),
        packed => packed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_and_rectangle_of_a_turned_square() {
        // A unit square turned 30°, with an inner point: its rectangle is the square itself.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let turn = |p: [f64; 2]| [c * p[0] - s * p[1], s * p[0] + c * p[1]];
        let pts: Vec<[f64; 2]> = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.4]]
            .into_iter()
            .map(turn)
            .collect();
        assert_eq!(convex_hull(&pts).len(), 4);
        let f = ChartFrame::fit(&pts);
        assert!(
            (f.size[0] - 1.0).abs() < 1e-12 && (f.size[1] - 1.0).abs() < 1e-12,
            "{f:?}"
        );
        for p in &pts {
            let q = f.local(*p);
            assert!(
                q.iter().all(|&x| (-1e-12..=1.0 + 1e-12).contains(&x)),
                "{q:?}"
            );
        }
    }

    #[test]
    fn a_tall_chart_lies_down() {
        let pts = [[0.0, 0.0], [0.5, 0.0], [0.5, 3.0], [0.0, 3.0]];
        let f = ChartFrame::fit(&pts);
        assert!((f.size[0] - 3.0).abs() < 1e-12 && (f.size[1] - 0.5).abs() < 1e-12);
        for p in pts {
            let q = f.local(p);
            assert!(q[0] >= -1e-12 && q[0] <= 3.0 + 1e-12 && q[1] >= -1e-12 && q[1] <= 0.5 + 1e-12);
        }
        // Degenerate charts: one point, a segment.
        let point = ChartFrame::fit(&[[2.0, 2.0]; 3]);
        assert_eq!(point.size, [0.0, 0.0]);
        assert_eq!(point.local([2.0, 2.0]), [0.0, 0.0]);
        let seg = ChartFrame::fit(&[[0.0, 0.0], [0.0, 2.0]]);
        assert!((seg.size[0] - 2.0).abs() < 1e-12 && seg.size[1].abs() < 1e-12);
    }

    /// Texels whose centre lies in the placed chart's hull (or that hold a hull corner).
    fn content_texels(f: &ChartFrame, packing: &Packing, i: usize) -> Vec<[i64; 2]> {
        let to_page = |p: [f64; 2]| packing.to_page(i, f, p);
        let hull: Vec<[f64; 2]> = f.hull.iter().map(|&p| to_page(p)).collect();
        // Orientations are turns, never mirrors: the hull stays counter-clockwise.
        let area: f64 = (0..hull.len())
            .map(|i| {
                let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum();
        assert!(area >= 0.0, "a mirrored chart");
        let mut out: Vec<[i64; 2]> = hull
            .iter()
            .map(|p| [p[0].floor() as i64, p[1].floor() as i64])
            .collect();
        let (x0, x1) = hull
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p[0]), a.1.max(p[0])));
        let (y0, y1) = hull
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p[1]), a.1.max(p[1])));
        for y in y0.floor() as i64..=y1.ceil() as i64 {
            for x in x0.floor() as i64..=x1.ceil() as i64 {
                let c = [x as f64 + 0.5, y as f64 + 0.5];
                let inside = (0..hull.len()).all(|i| {
                    let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
                    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) >= 0.0
                });
                if inside && hull.len() >= 3 {
                    out.push([x, y]);
                }
            }
        }
        out
    }

    /// Charts of mixed shapes (boxes, triangles, thin slivers, points): every chart stays on
    /// the page, no texel within the padding of one chart holds another chart, and the density
    /// is close to the best this placement allows (a little more does not fit).
    #[test]
    fn packed_charts_keep_apart_on_the_page_and_dense() {
        let mut frames = Vec::new();
        let mut x = 0.37f64;
        for k in 0..300 {
            x = (x * 7.13 + 0.29).fract();
            let w = 0.1 + 1.9 * x;
            let h = w * (0.05 + 0.95 * (x * 3.7).fract());
            let pts: Vec<[f64; 2]> = match k % 4 {
                0 => vec![[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]],
                1 => vec![[0.0, 0.0], [w, 0.0], [0.3 * w, h]],
                2 => vec![[0.0, 0.0], [w, 0.2 * h], [0.5 * w, h], [-0.2 * w, 0.6 * h]],
                _ if k % 40 == 3 => vec![[1.0, 1.0]],
                _ => vec![[0.0, 0.0], [w, 0.01 * h]],
            };
            frames.push(ChartFrame::fit(&pts));
        }
        let (page, pad) = (512u32, 2u32);
        let p = pack(&frames, page, pad).unwrap();
        let s = p.texels_per_unit;
        let mut owner = vec![u32::MAX; (page * page) as usize];
        let mut used = 0usize;
        for (i, f) in frames.iter().enumerate() {
            let texels = content_texels(f, &p, i);
            let mut mine = std::collections::HashSet::new();
            for t in &texels {
                assert!(
                    (0..page as i64).contains(&t[0]) && (0..page as i64).contains(&t[1]),
                    "chart {i} at {t:?} is off the page"
                );
                for dy in -(pad as i64)..=pad as i64 {
                    for dx in -(pad as i64)..=pad as i64 {
                        let (x, y) = (t[0] + dx, t[1] + dy);
                        if (0..page as i64).contains(&x) && (0..page as i64).contains(&y) {
                            mine.insert((x, y));
                        }
                    }
                }
            }
            for (x, y) in mine {
                let o = &mut owner[(y * page as i64 + x) as usize];
                assert!(
                    *o == u32::MAX,
                    "chart {i} comes within the padding of chart {o}"
                );
                *o = i as u32;
                used += 1;
            }
        }
        let (oriented, order) = (all_orientations(&frames), tallest_first(&frames));
        // Two percent more density needs more than the page.
        assert!(place(&oriented, &order, s * 1.02, page, pad).is_none_or(|t| t.2 > page));
        // Some charts were turned.
        assert!(p.orientations.iter().any(|&k| k != 0));
        // Grown charts cover most of the page.
        assert!(used as f64 > 0.5 * (page * page) as f64, "{used}");
        assert_eq!(pack(&frames, page, pad).unwrap(), p, "deterministic");
    }

    #[test]
    fn charts_that_only_fit_with_less_padding_get_one_texel() {
        // 1200 charts of at least 1 + 2·2 texels a side need 30,000 texels (128² has 16,384);
        // with one texel of padding, 10,800.
        let frames = vec![ChartFrame::rectangle(1.0, 1.0); 1200];
        assert!(pack(&frames, 128, 2).is_err());
        let p = pack_or_tighten(&frames, 128, 2).unwrap();
        assert_eq!(p, pack(&frames, 128, 1).unwrap());
        assert_eq!(p.padding, 1);
        // What fits with its padding keeps it.
        assert_eq!(pack_or_tighten(&frames, 256, 2).unwrap().padding, 2);
        // What fits with neither is still an error.
        let too_many = vec![ChartFrame::rectangle(1.0, 1.0); 3000];
        assert!(matches!(
            pack_or_tighten(&too_many, 128, 2),
            Err(MeshError::Unwrap(_))
        ));
    }

    #[test]
    fn too_many_charts_for_the_page_is_an_error() {
        let frames = vec![ChartFrame::rectangle(1.0, 1.0); 2000];
        // 2000 charts of at least 1 + 2·2 texels a side need 50,000 texels; 128² has 16,384.
        assert!(matches!(pack(&frames, 128, 2), Err(MeshError::Unwrap(_))));
        assert!(pack(&frames, 256, 2).is_ok());
    }
}
