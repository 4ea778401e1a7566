//! The closest-point tree built on the device (`lbvh.cu`): only the vertices and faces are
//! uploaded; centroid bounds, Morton codes, a stable radix sort, the Karras hierarchy over
//! leaves of 4 triangles and its boxes are computed there. Queries on it return the CPU
//! `Bvh`'s distances bit for bit (the boxes are exact, the per-triangle arithmetic the same);
//! only which of several equidistant faces is reported can differ.

use rayon::prelude::*;
use t2_tensor::cuda::{Args, CudaDevice, DeviceBuffer, KernelSource};

use super::GpuBvh;
use super::prims::Prims;
use crate::error::{MeshError, check_faces, check_finite, check_u32};

pub static LBVH: KernelSource = KernelSource {
    name: "mesh_lbvh",
    code: concat!(include_str!("exact.cuh"), include_str!("lbvh.cu")),
    arch_suffix: "",
};

const BLOCK: u32 = 256;
/// `LEAF_SIZE`, `RADIX_BITS` and `RADIX_CHUNK` in lbvh.cu.
const LEAF_SIZE: usize = 4;
const RADIX_BITS: u32 = 5;
const RADIX_CHUNK: usize = 64;
/// Bits of a Morton code (10 per axis).
const CODE_BITS: u32 = 30;
/// Blocks of the centroid-bounds pass: enough to fill the GPU, few enough that its per-warp
/// atomics stay cheap.
const BOUNDS_BLOCKS: usize = 1024;

impl GpuBvh {
    /// Builds the tree over `faces` on `dev` (validated as `Bvh::new` does). Returns once the
    /// tree is complete, so a build error surfaces here rather than at the first query.
    pub fn build(
        dev: &CudaDevice,
        vertices: &[[f32; 3]],
        faces: &[[u32; 3]],
    ) -> Result<GpuBvh, MeshError> {
        let p = Prims::new(dev, "bvh");
        // The checks read the inputs on every core while the copy (one thread) runs.
        let (checked, uploaded) = rayon::join(
            || validate(vertices, faces),
            || Ok::<_, MeshError>((p.upload(vertices)?, p.upload(faces)?)),
        );
        checked?;
        let (verts, fcs) = uploaded?;
        let (nodes, tris) = build_on(p, verts.ptr(), fcs.ptr(), faces.len())?;
        dev.synchronize().map_err(super::gpu_err("bvh"))?;
        Ok(GpuBvh {
            dev: dev.clone(),
            nodes,
            tris,
        })
    }
}

/// `Bvh::new`'s checks (the same error first), over chunks in parallel.
fn validate(vertices: &[[f32; 3]], faces: &[[u32; 3]]) -> Result<(), MeshError> {
    const CHUNK: usize = 1 << 16;
    if faces.is_empty() {
        return Err(MeshError::Empty("BVH needs at least one face"));
    }
    let nv = vertices.len();
    if !faces.par_chunks(CHUNK).all(|c| check_faces(c, nv).is_ok()) {
        check_faces(faces, nv)?;
    }
    let what = "BVH vertices";
    if !vertices
        .par_chunks(CHUNK)
        .all(|c| check_finite(c, what).is_ok())
    {
        check_finite(vertices, what)?;
    }
    // Node indices keep their top bit for the internal-node flag.
    check_u32(2 * faces.len(), "BVH nodes")
}

type Tree = (DeviceBuffer<[u32; 8]>, DeviceBuffer<[f32; 4]>);

/// The launch sequence (`host_check/lbvh_driver.cpp` repeats it on the host).
fn build_on(p: Prims<'_>, verts: u64, faces: u64, n: usize) -> Result<Tree, MeshError> {
    let launch =
        |func: &str, items: usize, args: &mut Args| p.launch(&LBVH, func, items, BLOCK, args);
    let bounds = p.alloc::<u32>(6)?;
    p.fill_u32(bounds.ptr(), 3, u32::MAX)?;
    p.fill_u32(bounds.ptr() + 12, 3, 0)?;
    let mut a = Args::new();
    a.push(verts).push(faces).push(n as i64).push(bounds.ptr());
    let items = n.min(BOUNDS_BLOCKS * BLOCK as usize);
    launch("lbvh_centroid_bounds", items, &mut a)?;

    let (mut keys, mut vals) = (p.alloc::<u32>(n)?, p.alloc::<u32>(n)?);
    let mut a = Args::new();
    a.push(verts)
        .push(faces)
        .push(n as i64)
        .push(bounds.ptr())
        .push(keys.ptr())
        .push(vals.ptr());
    launch("lbvh_morton", n, &mut a)?;

    // Stable sort by code; the ids start in order, so equal codes stay in id order.
    let chunks = n.div_ceil(RADIX_CHUNK);
    let hist = p.alloc::<u32>(chunks << RADIX_BITS)?;
    let (mut keys2, mut vals2) = (p.alloc::<u32>(n)?, p.alloc::<u32>(n)?);
    for shift in (0..CODE_BITS).step_by(RADIX_BITS as usize) {
        let mut a = Args::new();
        a.push(keys.ptr())
            .push(n as i64)
            .push(shift)
            .push(chunks as i64)
            .push(hist.ptr());
        launch("lbvh_radix_count", chunks, &mut a)?;
        p.exclusive_scan(&hist, chunks << RADIX_BITS)?;
        let mut a = Args::new();
        a.push(keys.ptr())
            .push(vals.ptr())
            .push(n as i64)
            .push(shift)
            .push(chunks as i64)
            .push(hist.ptr())
            .push(keys2.ptr())
            .push(vals2.ptr());
        launch("lbvh_radix_scatter", chunks, &mut a)?;
        std::mem::swap(&mut keys, &mut keys2);
        std::mem::swap(&mut vals, &mut vals2);
    }
    drop((hist, keys2, vals2));

    let tris = p.alloc::<[f32; 4]>(3 * n)?;
    let mut a = Args::new();
    a.push(verts)
        .push(faces)
        .push(vals.ptr())
        .push(n as i64)
        .push(tris.ptr());
    launch("lbvh_tris", n, &mut a)?;

    let leaves = n.div_ceil(LEAF_SIZE);
    let nodes = p.alloc::<[u32; 8]>(2 * leaves - 1)?;
    let parents = p.alloc::<u32>(2 * leaves - 1)?;
    let visits = p.alloc::<u32>(leaves - 1)?;
    if leaves > 1 {
        let mut a = Args::new();
        a.push(keys.ptr())
            .push(leaves as i64)
            .push(nodes.ptr())
            .push(parents.ptr());
        launch("lbvh_internal", leaves - 1, &mut a)?;
        p.fill_u32(visits.ptr(), leaves - 1, 0)?;
    }
    let mut a = Args::new();
    a.push(tris.ptr())
        .push(n as i64)
        .push(leaves as i64)
        .push(nodes.ptr())
        .push(parents.ptr())
        .push(visits.ptr());
    launch("lbvh_boxes", leaves, &mut a)?;
    Ok((nodes, tris))
}

/// Structural checks of a tree in the device format (`closest.cu`), for the host check and the
/// GPU tests: every node reached once from the root, each internal box exactly the union of
/// its children's (so each child lies inside it), each leaf box exactly its triangles' corner
/// bounds, every face in exactly one leaf with its corners in its own order, depth within the
/// queries' 64-entry stack.
#[cfg(test)]
pub(crate) fn check_tree(
    nodes: &[[u32; 8]],
    tris: &[[f32; 4]],
    vertices: &[[f32; 3]],
    faces: &[[u32; 3]],
) -> Result<(), String> {
    const INTERNAL: u32 = 0x8000_0000;
    let n = faces.len();
    if tris.len() != 3 * n {
        return Err(format!("{} triangle rows for {n} faces", tris.len()));
    }
    let boxed = |i: usize| -> ([f32; 3], [f32; 3]) {
        let b = nodes[i].map(f32::from_bits);
        ([b[0], b[1], b[2]], [b[4], b[5], b[6]])
    };
    let mut seen_node = vec![false; nodes.len()];
    let mut seen_tri = vec![false; n];
    let mut stack = vec![(0usize, 1usize)];
    let mut max_depth = 0;
    while let Some((ni, depth)) = stack.pop() {
        if ni >= nodes.len() || std::mem::replace(&mut seen_node[ni], true) {
            return Err(format!("node {ni} out of range or reached twice"));
        }
        max_depth = max_depth.max(depth);
        let (lo, hi) = boxed(ni);
        let (index, count) = (nodes[ni][3] as usize, nodes[ni][7]);
        let want = if count & INTERNAL != 0 {
            let (l, r) = (index, (count & !INTERNAL) as usize);
            if l >= nodes.len() || r >= nodes.len() {
                return Err(format!("node {ni}: children {l}, {r} out of range"));
            }
            stack.extend([(l, depth + 1), (r, depth + 1)]);
            let ((llo, lhi), (rlo, rhi)) = (boxed(l), boxed(r));
            let lo: [f32; 3] = std::array::from_fn(|a| llo[a].min(rlo[a]));
            let hi: [f32; 3] = std::array::from_fn(|a| lhi[a].max(rhi[a]));
            (lo, hi)
        } else {
            let count = count as usize;
            if !(1..=LEAF_SIZE).contains(&count) || index + count > n {
                return Err(format!("leaf {ni}: triangles {index}..+{count} of {n}"));
            }
            let (mut lo, mut hi) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
            for k in index..index + count {
                if std::mem::replace(&mut seen_tri[k], true) {
                    return Err(format!("triangle slot {k} in two leaves"));
                }
                for c in 0..3 {
                    for a in 0..3 {
                        lo[a] = lo[a].min(tris[3 * k + c][a]);
                        hi[a] = hi[a].max(tris[3 * k + c][a]);
                    }
                }
            }
            (lo, hi)
        };
        if (lo, hi) != want {
            return Err(format!(
                "node {ni}: box {lo:?}..{hi:?}, its contents span {want:?}"
            ));
        }
    }
    if let Some(ni) = seen_node.iter().position(|s| !s) {
        return Err(format!("node {ni} of {} unreachable", nodes.len()));
    }
    if seen_tri.iter().any(|s| !s) {
        return Err("a triangle slot in no leaf".into());
    }
    if max_depth > 64 {
        return Err(format!("depth {max_depth} overflows the queries' stack"));
    }
    let mut seen_face = vec![false; n];
    for (k, t) in tris.chunks_exact(3).enumerate() {
        let f = t[0][3].to_bits() as usize;
        if f >= n || std::mem::replace(&mut seen_face[f], true) {
            return Err(format!("slot {k}: face {f} out of range or repeated"));
        }
        for c in 0..3 {
            let v = vertices[faces[f][c] as usize];
            let w = if c == 0 { t[0][3] } else { 0.0 };
            if t[c].map(f32::to_bits) != [v[0], v[1], v[2], w].map(f32::to_bits) {
                return Err(format!(
                    "slot {k}: corner {c} is {:?}, not face {f}'s",
                    t[c]
                ));
            }
        }
    }
    Ok(())
}

/// The CPU's Morton order of `faces` (`bvh::sort_along_morton_curve`), which the device sort
/// must reproduce exactly.
#[cfg(test)]
pub(crate) fn cpu_morton_order(vertices: &[[f32; 3]], faces: &[[u32; 3]]) -> Vec<u32> {
    use crate::geom::{add, scale};
    let mut items: Vec<(u32, [f32; 3])> = faces
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let [a, b, c] = f.map(|v| vertices[v as usize]);
            (i as u32, scale(add(add(a, b), c), 1.0 / 3.0))
        })
        .collect();
    crate::bvh::sort_along_morton_curve(&mut items);
    items.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Attributes, NoisyTorus, voxelise};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The GPU-built tree's structure and leaf order (the query parity is in
    /// `tests/gpu_parity.rs`). Skips without a GPU unless `TRELLIS2_REQUIRE_CUDA=1`.
    /// Vertices and faces.
    type Soup = (Vec<[f32; 3]>, Vec<[u32; 3]>);

    #[test]
    fn gpu_built_tree_is_well_formed_in_morton_order() {
        let Some(dev) = t2_tensor::testing::cuda_or_skip() else {
            return;
        };
        let mut rng = StdRng::seed_from_u64(0x6c62_7668);
        let mut cases: Vec<Soup> = Vec::new();
        for n in [1usize, 2, 3, 4, 5, 8, 9, 1000, 70_001] {
            let v: Vec<[f32; 3]> = (0..3 * n)
                .map(|_| std::array::from_fn(|_| rng.random::<f32>() * 2.0 - 1.0))
                .collect();
            cases.push((
                v,
                (0..n as u32)
                    .map(|i| [3 * i, 3 * i + 1, 3 * i + 2])
                    .collect(),
            ));
        }
        // One triangle repeated: every code equal, the tree splits by leaf index alone.
        cases.push((
            vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            vec![[0, 1, 2]; 10_000],
        ));
        let shape = NoisyTorus {
            major: 0.25,
            minor: 0.1,
            amp: 0.01,
            freq: 30.0,
        };
        let m = voxelise(&shape, 256, Attributes::Pattern).unwrap().mesh;
        cases.push((m.vertices, m.faces));
        for (v, f) in &cases {
            let gpu = GpuBvh::build(&dev, v, f).unwrap();
            let nodes = gpu.nodes.download().unwrap();
            let tris = gpu.tris.download().unwrap();
            assert_eq!(nodes.len(), 2 * f.len().div_ceil(LEAF_SIZE) - 1);
            check_tree(&nodes, &tris, v, f).unwrap_or_else(|e| panic!("{} faces: {e}", f.len()));
            let order: Vec<u32> = tris.chunks_exact(3).map(|t| t[0][3].to_bits()).collect();
            assert!(
                order == cpu_morton_order(v, f),
                "{} faces: leaf order is not the CPU's Morton order",
                f.len()
            );
        }
        assert!(GpuBvh::build(&dev, &cases[0].0, &[]).is_err());
        assert!(GpuBvh::build(&dev, &cases[0].0, &[[0, 1, 9]]).is_err());
        assert!(GpuBvh::build(&dev, &[[f32::NAN; 3]; 3], &[[0, 1, 2]]).is_err());
    }

    /// Build and query seconds of the device-built tree against the CPU tree (built, then
    /// uploaded) on the bench's res-1024 sphere (~6.3 M faces). A measurement, not a check:
    /// `cargo test -p t2-mesh --lib gpu_built_tree_timing -- --ignored --nocapture` on a GPU host.
    #[test]
    #[ignore]
    fn gpu_built_tree_timing() {
        use crate::bvh::Bvh;
        use crate::synth::{Sphere, dual_grid};
        use std::time::Instant;
        let dev = CudaDevice::new(0).unwrap();
        super::super::warm_up(&dev).unwrap();
        let sphere = Sphere {
            center: [0.0; 3],
            radius: 0.4,
        };
        let m = dual_grid(&sphere, 1024).unwrap().mesh().unwrap();
        let (v, f) = (&m.vertices, &m.faces);
        eprintln!("sphere res 1024: {} faces", f.len());
        let secs = |t: Instant| t.elapsed().as_secs_f64();
        let (mut cpu, mut gpu) = (None, None);
        for _ in 0..3 {
            let t = Instant::now();
            let bvh = Bvh::new(v, f).unwrap();
            let t_new = secs(t);
            let t = Instant::now();
            let up = GpuBvh::upload(&dev, &bvh).unwrap();
            dev.synchronize().unwrap();
            let t_up = secs(t);
            let t = Instant::now();
            validate(v, f).unwrap();
            let t_check = secs(t);
            let t = Instant::now();
            let inputs = (dev.upload_slice(v).unwrap(), dev.upload_slice(f).unwrap());
            dev.synchronize().unwrap();
            let t_inputs = secs(t);
            let t = Instant::now();
            let tree = build_on(
                Prims::new(&dev, "bvh"),
                inputs.0.ptr(),
                inputs.1.ptr(),
                f.len(),
            );
            dev.synchronize().unwrap();
            let t_kernels = secs(t);
            drop((tree.unwrap(), inputs));
            let t = Instant::now();
            let built = GpuBvh::build(&dev, v, f).unwrap();
            let t_build = secs(t);
            eprintln!(
                "Bvh::new {t_new:.3} s + upload {t_up:.3} s; GpuBvh::build {t_build:.4} s \
                 (alone: checks {t_check:.4} s, input upload {t_inputs:.4} s, kernels {t_kernels:.4} s)"
            );
            (cpu, gpu) = (Some(up), Some(built));
        }
        let (cpu, gpu) = (cpu.unwrap(), gpu.unwrap());
        let mut rng = StdRng::seed_from_u64(5);
        let cell = 1.0 / 1024.0;
        let near: Vec<[f32; 3]> = (0..4_000_000)
            .map(|_| {
                let c = v[rng.random_range(0..v.len())];
                std::array::from_fn(|a| c[a] + cell * (rng.random::<f32>() * 2.0 - 1.0))
            })
            .collect();
        let far: Vec<[f32; 3]> = (0..1_000_000)
            .map(|_| std::array::from_fn(|_| rng.random::<f32>() - 0.5))
            .collect();
        for (name, q, r) in [
            ("4 M near, radius 2 cells", &near, 2.0 * cell),
            ("1 M uniform, unbounded", &far, f32::INFINITY),
        ] {
            for _ in 0..2 {
                let t = Instant::now();
                let a = cpu.closest_within(q, r).unwrap();
                let t_cpu = secs(t);
                let t = Instant::now();
                let b = gpu.closest_within(q, r).unwrap();
                let t_gpu = secs(t);
                let same = a.iter().zip(&b).all(|(a, b)| {
                    a.map(|c| c.distance.to_bits()) == b.map(|c| c.distance.to_bits())
                });
                eprintln!(
                    "{name}: CPU-built tree {t_cpu:.3} s, device-built {t_gpu:.3} s, same distances: {same}"
                );
            }
        }
    }
}
