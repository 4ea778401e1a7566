//! The narrow-band dual-contouring remesh with every phase on the device (`remesh.cu`, the
//! algorithm and its CPU twin in `crate::remesh`): only the level counts cross the bus; the
//! mesh stays on the device for the GPU decimation.

use t2_tensor::cuda::{Args, DeviceBuffer};

use super::collapse::DeviceMesh;
use super::prims::Prims;
use super::{BLOCK, CLOSEST, GpuBvh};
use crate::error::MeshError;
use crate::remesh::{BAND_RADIUS, RemeshParams};

/// The dense brick table is skipped (the caller falls back to host-side phases) above this
/// many entries: 2^28 u32 = 1 GiB, reached at a remesh resolution of ~2,560.
const MAX_BRICK_TABLE: u64 = 1 << 28;

/// Cells per brick (`BRICK_CELLS` in remesh.cu).
const BRICK_CELLS: usize = 64;

/// Remeshes on `g`'s device (the mesh left there), or `None` when the grid is too large for the
/// dense brick table.
/// `base` is the validated coarse resolution; phase seconds are appended to `phases`.
pub(crate) fn remesh_on_device(
    g: &GpuBvh,
    params: &RemeshParams,
    base: u32,
    phases: &mut Vec<(&'static str, f64)>,
) -> Result<Option<DeviceMesh>, MeshError> {
    let final_res = params.resolution;
    let nb = (final_res as u64 + 1).div_ceil(4);
    let keys = nb * nb * nb;
    if keys > MAX_BRICK_TABLE {
        return Ok(None);
    }
    let pr = Prims::new(&g.dev, "remesh");
    let launch = |func: &str, n: usize, a: &mut Args| pr.launch(&CLOSEST, func, n, BLOCK, a);
    let tree = |a: &mut Args| {
        a.push(g.nodes.ptr()).push(g.tris.ptr());
    };
    let frame = |a: &mut Args, res: u32| {
        a.push(res as f32)
            .push(params.scale)
            .push(params.center[0])
            .push(params.center[1])
            .push(params.center[2]);
    };
    let mut clock = std::time::Instant::now();
    let mut lap = |name: &'static str| {
        phases.push((name, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };
    let eps = params.band * params.scale / final_res as f32;

    // 1. Band voxels, level by level (parent order, then child offset order).
    let r = base as i32;
    let level0: Vec<[i32; 3]> = (0..r)
        .flat_map(|x| (0..r).flat_map(move |y| (0..r).map(move |z| [x, y, z])))
        .collect();
    let mut coords: DeviceBuffer<[i32; 3]> = pr.upload(&level0)?;
    let mut n = level0.len();
    let mut res = base;
    loop {
        let tol = BAND_RADIUS * (params.scale / res as f32);
        let keep = pr.alloc::<u32>(n + 1)?;
        pr.fill_u32(keep.ptr() + 4 * n as u64, 1, 0)?;
        let mut a = Args::new();
        tree(&mut a);
        a.push(coords.ptr()).push(n as i64);
        frame(&mut a, res);
        a.push(eps + tol).push(eps).push(tol).push(keep.ptr());
        launch("remesh_band_keep", n, &mut a)?;
        pr.exclusive_scan(&keep, n + 1)?;
        let kept = pr.take(&[(&keep, n)])?[0] as usize;
        if kept == 0 {
            return Err(MeshError::Empty("remesh: no voxel in the narrow band"));
        }
        let last = res >= final_res;
        let next_n = if last { kept } else { 8 * kept };
        let next = pr.alloc::<[i32; 3]>(next_n)?;
        let mut a = Args::new();
        a.push(coords.ptr())
            .push(n as i64)
            .push(keep.ptr())
            .push(i32::from(!last))
            .push(next.ptr());
        launch("remesh_band_next", n, &mut a)?;
        coords = next;
        n = next_n;
        if last {
            break;
        }
        res *= 2;
    }
    lap("band");

    // 2. The bricks around the band's corners (numbered by a scan of the dense table), the
    //    needed corner slots, UDF − eps there.
    let brick_id = pr.alloc::<u32>(keys as usize + 1)?;
    pr.fill_u32(brick_id.ptr(), keys as usize + 1, 0)?;
    let mut a = Args::new();
    a.push(coords.ptr())
        .push(n as i64)
        .push(nb)
        .push(brick_id.ptr());
    launch("remesh_mark_bricks", n, &mut a)?;
    pr.exclusive_scan(&brick_id, keys as usize + 1)?;
    let bricks = pr.take(&[(&brick_id, keys as usize)])?[0] as usize;
    let slots = bricks * BRICK_CELLS;
    let key_of = pr.alloc::<u64>(bricks)?;
    let mut a = Args::new();
    a.push(brick_id.ptr()).push(keys as i64).push(key_of.ptr());
    launch("remesh_brick_keys", keys as usize, &mut a)?;
    let needed = pr.alloc::<u32>(slots)?;
    pr.fill_u32(needed.ptr(), slots, 0)?;
    let by_brick = |a: &mut Args| {
        a.push(coords.ptr())
            .push(n as i64)
            .push(nb)
            .push(brick_id.ptr());
    };
    let mut a = Args::new();
    by_brick(&mut a);
    a.push(needed.ptr());
    launch("remesh_mark_corners", n, &mut a)?;
    let cell = params.scale / final_res as f32;
    let values = pr.alloc::<f32>(slots)?;
    let mut a = Args::new();
    tree(&mut a);
    a.push(slots as i64)
        .push(needed.ptr())
        .push(key_of.ptr())
        .push(nb);
    frame(&mut a, final_res);
    a.push(eps + 1.75 * cell).push(eps).push(values.ptr());
    launch("remesh_corner_values", slots, &mut a)?;
    drop((needed, key_of));

    // 3. Dual vertices and edge signs; voxel rows by slot for the quads.
    let dual = pr.alloc::<[f32; 3]>(n)?;
    let dirs = pr.alloc::<u32>(n)?;
    let voxel_row = pr.alloc::<u32>(slots)?;
    pr.fill_u32(voxel_row.ptr(), slots, u32::MAX)?;
    let mut a = Args::new();
    by_brick(&mut a);
    a.push(values.ptr())
        .push(dual.ptr())
        .push(dirs.ptr())
        .push(voxel_row.ptr());
    launch("remesh_dual", n, &mut a)?;
    drop(values);

    // 4. Quads around each sign-changing edge, voxel-major, axis-minor.
    let offsets = pr.alloc::<u32>(n + 1)?;
    pr.fill_u32(offsets.ptr() + 4 * n as u64, 1, 0)?;
    let mut a = Args::new();
    by_brick(&mut a);
    a.push(voxel_row.ptr()).push(dirs.ptr()).push(offsets.ptr());
    launch("remesh_quad_count", n, &mut a)?;
    pr.exclusive_scan(&offsets, n + 1)?;
    let nq = pr.take(&[(&offsets, n)])?[0] as usize;
    let quads = pr.alloc::<[u32; 4]>(nq)?;
    let quad_dir = pr.alloc::<i32>(nq)?;
    let used = pr.alloc::<u32>(n + 1)?;
    pr.fill_u32(used.ptr(), n + 1, 0)?;
    let mut a = Args::new();
    by_brick(&mut a);
    a.push(voxel_row.ptr())
        .push(dirs.ptr())
        .push(offsets.ptr())
        .push(quads.ptr())
        .push(quad_dir.ptr())
        .push(used.ptr());
    launch("remesh_quad_write", n, &mut a)?;
    drop((voxel_row, dirs, offsets, brick_id));
    lap("corners + contouring + quads");

    // 5. The used voxels' vertices (voxel order) and two triangles per quad.
    pr.exclusive_scan(&used, n + 1)?;
    let nv = pr.take(&[(&used, n)])?[0] as usize;
    let verts = pr.alloc::<f32>(3 * nv)?;
    let mut a = Args::new();
    a.push(dual.ptr()).push(n as i64).push(used.ptr());
    frame(&mut a, final_res);
    a.push(verts.ptr());
    launch("remesh_vertices", n, &mut a)?;
    let faces = pr.alloc::<u32>(6 * nq)?;
    let mut a = Args::new();
    a.push(quads.ptr())
        .push(quad_dir.ptr())
        .push(nq as i64)
        .push(used.ptr())
        .push(verts.ptr())
        .push(faces.ptr());
    launch("remesh_faces", nq, &mut a)?;
    drop((dual, quads, quad_dir, used, coords));

    // 6. Optional projection back onto the input surface.
    if params.project_back > 0.0 && nv > 0 {
        let mut a = Args::new();
        tree(&mut a);
        a.push(verts.ptr())
            .push(nv as i64)
            .push(params.project_back);
        launch("remesh_project", nv, &mut a)?;
    }
    // Waits for the last kernels, so the lap is the phase's device time.
    pr.take(&[])?;
    lap("output");
    Ok(Some(DeviceMesh {
        dev: g.dev.clone(),
        verts,
        faces,
        nv,
        nf: 2 * nq,
    }))
}
