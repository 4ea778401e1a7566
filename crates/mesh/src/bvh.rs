//! A bounding-volume hierarchy over triangles for unsigned-distance / closest-point queries:
//! the CPU twin of cubvh's `unsigned_distance(points, return_uvw=True)` used by remeshing and
//! texture baking. The triangles are sorted along a Morton curve of their centroids; the top
//! levels split where the curve crosses the node's highest differing Morton bit (no pass over
//! the items: their boxes come back up from the children), subtrees under
//! `PARALLEL_BUILD_MIN` triangles are built in parallel with binned SAH, 4 triangles per leaf; queries visit the nearer child first and prune by
//! box distance.

use rayon::prelude::*;

use crate::error::{MeshError, check_faces, check_finite};
use crate::geom::{add, dot, scale, sub};

const LEAF_SIZE: usize = 4;
/// Subtrees smaller than this are built on the current thread, with SAH; above it the Morton
/// splits cost nothing. 2,048 measured 11 % faster to build than 16,384 (res-1024 sphere, 2-core
/// box) with no slower queries (remesh band and corner UDF on the CPU).
const PARALLEL_BUILD_MIN: usize = 1 << 11;

#[derive(Clone, Copy, Debug)]
struct Node {
    min: [f32; 3],
    max: [f32; 3],
    /// Leaf: first primitive in `order`. Internal: offset from this node to its right child
    /// (the left child is the next node).
    index: u32,
    /// Leaf: primitive count (> 0). Internal: 0.
    count: u32,
}

/// The closest surface point to a query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Closest {
    pub distance: f32,
    pub face: u32,
    /// Barycentric weights of the face's three corners (sum 1).
    pub uvw: [f32; 3],
    pub point: [f32; 3],
}

pub struct Bvh {
    nodes: Vec<Node>,
    /// Face ids in leaf order.
    order: Vec<u32>,
    /// Face corners (in each face's own order) stored in leaf order, so a leaf's triangles are
    /// contiguous in memory: this halves query time against face-order storage.
    tris: Vec<[[f32; 3]; 3]>,
}

impl Bvh {
    pub fn new(vertices: &[[f32; 3]], faces: &[[u32; 3]]) -> Result<Self, MeshError> {
        if faces.is_empty() {
            return Err(MeshError::Empty("BVH needs at least one face"));
        }
        check_faces(faces, vertices.len())?;
        check_finite(vertices, "BVH vertices")?;
        let tris: Vec<[[f32; 3]; 3]> = faces
            .par_iter()
            .map(|f| {
                [
                    vertices[f[0] as usize],
                    vertices[f[1] as usize],
                    vertices[f[2] as usize],
                ]
            })
            .collect();
        let mut items: Vec<(u32, [f32; 3])> = tris
            .par_iter()
            .enumerate()
            .map(|(i, t)| (i as u32, scale(add(add(t[0], t[1]), t[2]), 1.0 / 3.0)))
            .collect();
        let boxes: Vec<Aabb> = tris
            .par_iter()
            .map(|t| {
                let lo = std::array::from_fn(|a| t[0][a].min(t[1][a]).min(t[2][a]));
                let hi = std::array::from_fn(|a| t[0][a].max(t[1][a]).max(t[2][a]));
                (lo, hi)
            })
            .collect();
        let keys = sort_along_morton_curve(&mut items);
        let nodes = build(&mut items, &keys, 0, &boxes);
        let order: Vec<u32> = items.into_par_iter().map(|(i, _)| i).collect();
        let tris = order.par_iter().map(|&f| tris[f as usize]).collect();
        Ok(Bvh { nodes, order, tris })
    }

    pub fn face_count(&self) -> usize {
        self.tris.len()
    }

    /// The tree in the flat layout the CUDA kernels read (`gpu/closest.cu`): per node
    /// `[min.xyz, index, max.xyz, count]` (index/count as u32 bits) with explicit children, so
    /// that a tree built on the device in another node order reads the same way: a leaf keeps
    /// (first triangle, count), an internal node becomes (left child, `0x8000_0000 | right
    /// child`). Per triangle in leaf order three float4 `(a, face id bits), (b, 0), (c, 0)`.
    pub(crate) fn flattened(&self) -> (Vec<[u32; 8]>, Vec<[f32; 4]>) {
        let nodes = self
            .nodes
            .par_iter()
            .enumerate()
            .map(|(ni, n)| {
                let [a, b, c] = n.min.map(f32::to_bits);
                let [d, e, f] = n.max.map(f32::to_bits);
                let (index, count) = if n.count > 0 {
                    (n.index, n.count)
                } else {
                    let ni = ni as u32;
                    (ni + 1, 0x8000_0000 | (ni + n.index))
                };
                [a, b, c, index, d, e, f, count]
            })
            .collect();
        let mut tris = vec![[0.0f32; 4]; 3 * self.tris.len()];
        tris.par_chunks_mut(3)
            .zip(self.tris.par_iter().zip(&self.order))
            .for_each(|(out, (t, &face))| {
                out[0] = [t[0][0], t[0][1], t[0][2], f32::from_bits(face)];
                out[1] = [t[1][0], t[1][1], t[1][2], 0.0];
                out[2] = [t[2][0], t[2][1], t[2][2], 0.0];
            });
        (nodes, tris)
    }

    /// The closest point on the mesh to `p`.
    pub fn closest(&self, p: [f32; 3]) -> Closest {
        let mut best = self.closest_within(p, f32::INFINITY).unwrap_or(Closest {
            distance: f32::INFINITY,
            face: 0,
            uvw: [1.0, 0.0, 0.0],
            point: self.tris[0][0],
        });
        if !best.distance.is_finite() {
            // Only reachable with non-finite queries: report the first corner, infinitely far.
            best.distance = f32::INFINITY;
        }
        best
    }

    /// The closest point on the mesh to `p` if one lies strictly within `radius`; pruning by
    /// the radius makes far queries cheap (the remesher's band test only needs "near or not").
    pub fn closest_within(&self, p: [f32; 3], radius: f32) -> Option<Closest> {
        let mut best: Option<Closest> = None;
        let mut best_d2 = radius * radius;
        let mut stack: [u32; 64] = [0; 64];
        let mut top = 1usize;
        while top > 0 {
            top -= 1;
            let ni = stack[top] as usize;
            let node = &self.nodes[ni];
            if box_dist2(node, p) >= best_d2 {
                continue;
            }
            if node.count > 0 {
                let first = node.index as usize;
                for k in first..first + node.count as usize {
                    let (q, uvw) = closest_on_triangle(p, &self.tris[k]);
                    let face = self.order[k];
                    let d = sub(q, p);
                    let d2 = dot(d, d);
                    if d2 < best_d2 {
                        best_d2 = d2;
                        best = Some(Closest {
                            distance: 0.0,
                            face,
                            uvw,
                            point: q,
                        });
                    }
                }
            } else {
                let (l, r) = (ni + 1, ni + node.index as usize);
                let (dl, dr) = (box_dist2(&self.nodes[l], p), box_dist2(&self.nodes[r], p));
                // Push the farther child first so the nearer one is visited next.
                let (near, far, dfar) = if dl <= dr { (l, r, dr) } else { (r, l, dl) };
                if dfar < best_d2 && top < stack.len() {
                    stack[top] = far as u32;
                    top += 1;
                }
                if top < stack.len() {
                    stack[top] = near as u32;
                    top += 1;
                }
            }
        }
        best.map(|b| Closest {
            distance: best_d2.sqrt(),
            ..b
        })
    }

    /// Closest points for many queries, in parallel.
    pub fn closest_many(&self, points: &[[f32; 3]]) -> Vec<Closest> {
        points.par_iter().map(|&p| self.closest(p)).collect()
    }

    /// Unsigned distances for many queries, in parallel.
    pub fn unsigned_distance(&self, points: &[[f32; 3]]) -> Vec<f32> {
        points
            .par_iter()
            .map(|&p| self.closest(p).distance)
            .collect()
    }
}

#[inline]
fn box_dist2(n: &Node, p: [f32; 3]) -> f32 {
    let mut d2 = 0.0;
    for a in 0..3 {
        let d = (n.min[a] - p[a]).max(0.0).max(p[a] - n.max[a]);
        d2 += d * d;
    }
    d2
}

/// A triangle's bounding box `(min, max)`.
type Aabb = ([f32; 3], [f32; 3]);

/// The node's bounds and its items' centroid bounds, in one pass.
fn bounds(items: &[(u32, [f32; 3])], boxes: &[Aabb]) -> (Aabb, Aabb) {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    let mut cmin = [f32::INFINITY; 3];
    let mut cmax = [f32::NEG_INFINITY; 3];
    for (i, c) in items {
        let (blo, bhi) = boxes[*i as usize];
        for a in 0..3 {
            lo[a] = lo[a].min(blo[a]);
            hi[a] = hi[a].max(bhi[a]);
            cmin[a] = cmin[a].min(c[a]);
            cmax[a] = cmax[a].max(c[a]);
        }
    }
    ((lo, hi), (cmin, cmax))
}

/// Sorts `items` by the Morton code of their centroid (10 bits per axis over the centroids'
/// bounds; ties by id, so the order never depends on the run) and returns the sorted codes.
pub(crate) fn sort_along_morton_curve(items: &mut [(u32, [f32; 3])]) -> Vec<u32> {
    let (lo, hi) = items
        .par_iter()
        .fold(
            || ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]),
            |(lo, hi), (_, c)| {
                (
                    std::array::from_fn(|a| lo[a].min(c[a])),
                    std::array::from_fn(|a| hi[a].max(c[a])),
                )
            },
        )
        .reduce(
            || ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]),
            |(l1, h1), (l2, h2)| {
                (
                    std::array::from_fn(|a| l1[a].min(l2[a])),
                    std::array::from_fn(|a| h1[a].max(h2[a])),
                )
            },
        );
    let mut keyed: Vec<(u32, (u32, [f32; 3]))> = items
        .par_iter()
        .map(|&(i, c)| {
            let q: [u32; 3] = std::array::from_fn(|a| {
                let t = (c[a] - lo[a]) / (hi[a] - lo[a]).max(f32::MIN_POSITIVE);
                (t.clamp(0.0, 1.0) * 1023.0) as u32
            });
            (crate::spatial::morton3(q), (i, c))
        })
        .collect();
    keyed.par_sort_unstable_by_key(|&(k, (i, _))| (k, i));
    items
        .par_iter_mut()
        .zip(&keyed)
        .for_each(|(item, (_, it))| *item = *it);
    keyed.into_par_iter().map(|(k, _)| k).collect()
}

/// Where a node of Morton-sorted `keys` splits: at its highest differing bit (the items with
/// it clear come first), or in the middle when every key is equal.
fn morton_split(keys: &[u32]) -> usize {
    let (first, last) = (keys[0], keys[keys.len() - 1]);
    if first == last {
        return keys.len() / 2;
    }
    let bit = 31 - (first ^ last).leading_zeros();
    keys.partition_point(|&k| (k >> bit) & 1 == 0)
}

/// Builds the tree over `items` (which start at `base` in the final order): nodes with the root
/// first, each left child right after its parent and child links relative to each node.
fn build(items: &mut [(u32, [f32; 3])], keys: &[u32], base: usize, boxes: &[Aabb]) -> Vec<Node> {
    let part = build_part(items, keys, base, boxes);
    let mut nodes = Vec::with_capacity(part.len());
    part.flatten_into(&mut nodes);
    nodes
}

/// A subtree built in parallel: serial subtrees are built straight into their own node list,
/// and the parallel levels above them are kept as a small tree, flattened once at the end
/// (concatenating child lists at every level copied each node once per level above it).
enum Part {
    Serial(Vec<Node>),
    Split {
        min: [f32; 3],
        max: [f32; 3],
        sides: Box<(Part, Part)>,
        len: usize,
    },
}

impl Part {
    fn len(&self) -> usize {
        match self {
            Part::Serial(nodes) => nodes.len(),
            Part::Split { len, .. } => *len,
        }
    }

    /// The subtree's bounds (its root's box).
    fn bounds(&self) -> Aabb {
        match self {
            Part::Serial(nodes) => (nodes[0].min, nodes[0].max),
            Part::Split { min, max, .. } => (*min, *max),
        }
    }

    fn flatten_into(self, nodes: &mut Vec<Node>) {
        match self {
            Part::Serial(mut own) => nodes.append(&mut own),
            Part::Split {
                min, max, sides, ..
            } => {
                let (left, right) = *sides;
                nodes.push(Node {
                    min,
                    max,
                    index: (1 + left.len()) as u32,
                    count: 0,
                });
                left.flatten_into(nodes);
                right.flatten_into(nodes);
            }
        }
    }
}

fn build_part(items: &mut [(u32, [f32; 3])], keys: &[u32], base: usize, boxes: &[Aabb]) -> Part {
    if items.len() < PARALLEL_BUILD_MIN {
        let mut nodes = Vec::with_capacity(items.len());
        build_serial(items, base, boxes, &mut nodes);
        return Part::Serial(nodes);
    }
    let mid = morton_split(keys);
    let (left, right) = items.split_at_mut(mid);
    let (lkeys, rkeys) = keys.split_at(mid);
    let (l, r) = rayon::join(
        || build_part(left, lkeys, base, boxes),
        || build_part(right, rkeys, base + mid, boxes),
    );
    let ((l_lo, l_hi), (r_lo, r_hi)) = (l.bounds(), r.bounds());
    Part::Split {
        min: std::array::from_fn(|a| l_lo[a].min(r_lo[a])),
        max: std::array::from_fn(|a| l_hi[a].max(r_hi[a])),
        len: 1 + l.len() + r.len(),
        sides: Box::new((l, r)),
    }
}

/// Appends the subtree over `items` to `nodes` (root first).
fn build_serial(items: &mut [(u32, [f32; 3])], base: usize, boxes: &[Aabb], nodes: &mut Vec<Node>) {
    let ((min, max), centroids) = bounds(items, boxes);
    let root = nodes.len();
    if items.len() <= LEAF_SIZE {
        nodes.push(Node {
            min,
            max,
            index: base as u32,
            count: items.len() as u32,
        });
        return;
    }
    nodes.push(Node {
        min,
        max,
        index: 0,
        count: 0,
    });
    let mid = split(items, boxes, centroids);
    let (left, right) = items.split_at_mut(mid);
    build_serial(left, base, boxes, nodes);
    nodes[root].index = (nodes.len() - root) as u32;
    build_serial(right, base + mid, boxes, nodes);
}

/// Partitions an internal node's `items` (centroids within `(cmin, cmax)`) in place and
/// returns the split index.
fn split(items: &mut [(u32, [f32; 3])], boxes: &[Aabb], (cmin, cmax): Aabb) -> usize {
    // Large nodes split at the median (cheap, and their boxes barely affect queries); smaller
    // ones by SAH, which is what tightens the leaves' neighbourhoods.
    let sah = if items.len() <= SAH_MAX_ITEMS {
        sah_split(items, boxes, cmin, cmax)
    } else {
        None
    };
    sah.unwrap_or_else(|| {
        // Median on the widest axis (also when no SAH plane separates, e.g. equal centroids).
        let axis = (0..3)
            .max_by(|&a, &b| (cmax[a] - cmin[a]).total_cmp(&(cmax[b] - cmin[b])))
            .unwrap_or(0);
        let mid = items.len() / 2;
        items.select_nth_unstable_by(mid, |x, y| x.1[axis].total_cmp(&y.1[axis]));
        mid
    })
}

/// Nodes above this many triangles use a median split instead of SAH.
const SAH_MAX_ITEMS: usize = 1 << 15;
/// SAH bins per axis.
const SAH_BINS: usize = 16;

fn half_area(lo: [f32; 3], hi: [f32; 3]) -> f32 {
    let d = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
    if d[0] < 0.0 {
        0.0
    } else {
        d[0] * d[1] + d[1] * d[2] + d[2] * d[0]
    }
}

/// Binned surface-area-heuristic split: partitions `items` in place at the cheapest of
/// `SAH_BINS − 1` planes per axis and returns the split index, or `None` if no plane separates.
/// Tighter boxes than a median split cut closest-point query time.
fn sah_split(
    items: &mut [(u32, [f32; 3])],
    boxes: &[Aabb],
    cmin: [f32; 3],
    cmax: [f32; 3],
) -> Option<usize> {
    #[derive(Clone, Copy)]
    struct Bin {
        count: usize,
        lo: [f32; 3],
        hi: [f32; 3],
    }
    const EMPTY: Bin = Bin {
        count: 0,
        lo: [f32::INFINITY; 3],
        hi: [f32::NEG_INFINITY; 3],
    };
    let grow = |b: &mut Bin, lo: [f32; 3], hi: [f32; 3]| {
        for a in 0..3 {
            b.lo[a] = b.lo[a].min(lo[a]);
            b.hi[a] = b.hi[a].max(hi[a]);
        }
    };
    // All three axes' bins in one pass over the items.
    let scales: [Option<f32>; 3] = std::array::from_fn(|axis| {
        let extent = cmax[axis] - cmin[axis];
        (extent > 0.0).then(|| SAH_BINS as f32 / extent)
    });
    let mut axis_bins = [[EMPTY; SAH_BINS]; 3];
    for (i, c) in items.iter() {
        let (lo, hi) = boxes[*i as usize];
        for axis in 0..3 {
            if let Some(scale) = scales[axis] {
                let bin = (((c[axis] - cmin[axis]) * scale) as usize).min(SAH_BINS - 1);
                let b = &mut axis_bins[axis][bin];
                b.count += 1;
                grow(b, lo, hi);
            }
        }
    }
    let mut best: Option<(f32, usize, usize)> = None; // (cost, axis, plane)
    for axis in 0..3 {
        if scales[axis].is_none() {
            continue;
        }
        let bins = &axis_bins[axis];
        // Sweep: cost of the left part up to each plane, then the right part.
        let mut left_cost = [0.0f32; SAH_BINS];
        let mut acc = EMPTY;
        for k in 0..SAH_BINS - 1 {
            acc.count += bins[k].count;
            grow(&mut acc, bins[k].lo, bins[k].hi);
            left_cost[k] = acc.count as f32 * half_area(acc.lo, acc.hi);
        }
        let mut acc = EMPTY;
        for k in (1..SAH_BINS).rev() {
            acc.count += bins[k].count;
            grow(&mut acc, bins[k].lo, bins[k].hi);
            let left_n = items.len() - acc.count;
            if left_n == 0 || acc.count == 0 {
                continue;
            }
            let cost = left_cost[k - 1] + acc.count as f32 * half_area(acc.lo, acc.hi);
            if best.is_none_or(|b| cost < b.0) {
                best = Some((cost, axis, k));
            }
        }
    }
    let (_, axis, plane) = best?;
    let scale = SAH_BINS as f32 / (cmax[axis] - cmin[axis]);
    let mut mid = 0;
    for i in 0..items.len() {
        let bin = (((items[i].1[axis] - cmin[axis]) * scale) as usize).min(SAH_BINS - 1);
        if bin < plane {
            items.swap(i, mid);
            mid += 1;
        }
    }
    (mid > 0 && mid < items.len()).then_some(mid)
}

/// Closest point on triangle `t` to `p` and its barycentric weights (Ericson, Real-Time
/// Collision Detection §5.1.5: Voronoi regions of vertices, edges, then the face).
pub fn closest_on_triangle(p: [f32; 3], t: &[[f32; 3]; 3]) -> ([f32; 3], [f32; 3]) {
    let [a, b, c] = *t;
    let ab = sub(b, a);
    let ac = sub(c, a);
    let ap = sub(p, a);
    let d1 = dot(ab, ap);
    let d2 = dot(ac, ap);
    if d1 <= 0.0 && d2 <= 0.0 {
        return (a, [1.0, 0.0, 0.0]);
    }
    let bp = sub(p, b);
    let d3 = dot(ab, bp);
    let d4 = dot(ac, bp);
    if d3 >= 0.0 && d4 <= d3 {
        return (b, [0.0, 1.0, 0.0]);
    }
    let vc = d1 * d4 - d3 * d2;
    if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
        let v = d1 / (d1 - d3);
        return (add(a, scale(ab, v)), [1.0 - v, v, 0.0]);
    }
    let cp = sub(p, c);
    let d5 = dot(ab, cp);
    let d6 = dot(ac, cp);
    if d6 >= 0.0 && d5 <= d6 {
        return (c, [0.0, 0.0, 1.0]);
    }
    let vb = d5 * d2 - d1 * d6;
    if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
        let w = d2 / (d2 - d6);
        return (add(a, scale(ac, w)), [1.0 - w, 0.0, w]);
    }
    let va = d3 * d6 - d5 * d4;
    if va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0 {
        let w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        return (add(b, scale(sub(c, b), w)), [0.0, 1.0 - w, w]);
    }
    let denom = va + vb + vc;
    if !(denom.abs() > 0.0) || !denom.is_finite() {
        // Degenerate (zero-area) triangle whose regions all failed: fall back to its corners.
        let (i, q) = [a, b, c]
            .into_iter()
            .enumerate()
            .min_by(|x, y| dot(sub(x.1, p), sub(x.1, p)).total_cmp(&dot(sub(y.1, p), sub(y.1, p))))
            .unwrap();
        let mut uvw = [0.0; 3];
        uvw[i] = 1.0;
        return (q, uvw);
    }
    let v = vb / denom;
    let w = vc / denom;
    (add(a, add(scale(ab, v), scale(ac, w))), [1.0 - v - w, v, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn coincident_triangles_build_and_query() {
        // Equal centroids leave SAH no separating plane: the median fallback must still split.
        let verts = vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let faces = vec![[0, 1, 2]; 50];
        let bvh = Bvh::new(&verts, &faces).unwrap();
        let hit = bvh.closest([0.25, 0.25, 2.0]);
        assert!((hit.distance - 2.0).abs() < 1e-6);
        assert!(bvh.closest_within([0.25, 0.25, 2.0], 1.0).is_none());
        assert!(Bvh::new(&verts, &[]).is_err());
        assert!(Bvh::new(&[[f32::NAN; 3]; 3], &[[0, 1, 2]]).is_err());
    }

    #[test]
    fn matches_brute_force() {
        let mut rng = StdRng::seed_from_u64(3);
        let verts: Vec<[f32; 3]> = (0..600)
            .map(|_| std::array::from_fn(|_| rng.random::<f32>()))
            .collect();
        let faces: Vec<[u32; 3]> = (0..200).map(|i| [3 * i, 3 * i + 1, 3 * i + 2]).collect();
        let bvh = Bvh::new(&verts, &faces).unwrap();
        for _ in 0..500 {
            let p: [f32; 3] = std::array::from_fn(|_| rng.random::<f32>() * 1.6 - 0.3);
            let brute = faces
                .iter()
                .map(|f| {
                    let t = [
                        verts[f[0] as usize],
                        verts[f[1] as usize],
                        verts[f[2] as usize],
                    ];
                    let (q, _) = closest_on_triangle(p, &t);
                    dot(sub(q, p), sub(q, p)).sqrt()
                })
                .fold(f32::INFINITY, f32::min);
            let got = bvh.closest(p);
            assert!(
                (got.distance - brute).abs() <= 1e-6,
                "{} vs {brute}",
                got.distance
            );
            let f = faces[got.face as usize];
            let t = [
                verts[f[0] as usize],
                verts[f[1] as usize],
                verts[f[2] as usize],
            ];
            let rebuilt = add(
                add(scale(t[0], got.uvw[0]), scale(t[1], got.uvw[1])),
                scale(t[2], got.uvw[2]),
            );
            assert!(crate::geom::dist(rebuilt, got.point) < 1e-5);
        }
    }
}
