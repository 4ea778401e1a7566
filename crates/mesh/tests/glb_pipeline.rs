//! End-to-end `to_glb` on synthetic decoded assets: every GLB passes the Khronos validator with
//! zero errors and loads back with the `gltf` crate; textures have the requested size; the face
//! count is within the decimation target; texture lookups at the GLB's UVs reproduce the voxel
//! colours (so the UV / row convention is right end to end).

mod validator_support;

use t2_mesh::bvh::Bvh;
use t2_mesh::glb::write_mesh_glb;
use t2_mesh::sample::VoxelField;
use t2_mesh::synth::{Attributes, NoisyTorus, voxelise};
use t2_mesh::{GlbParams, MeshWithVoxel, TextureFormat, to_glb};
use validator_support::assert_valid;

fn asset(res: u32) -> MeshWithVoxel {
    let shape = NoisyTorus {
        major: 0.25,
        minor: 0.1,
        amp: 0.01,
        freq: 30.0,
    };
    voxelise(&shape, res, Attributes::Pattern).unwrap()
}

fn image_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("texture decodes");
    (img.width(), img.height())
}

/// (face count, embedded image sizes, positions, uvs) of a loaded GLB.
type Loaded = (usize, Vec<(u32, u32)>, Vec<[f32; 3]>, Vec<[f32; 2]>);

/// Loads with the gltf crate (images left encoded: the crate's importer has no WebP decoder)
/// and returns (face count, embedded image sizes, positions, uvs).
fn load_back(glb: &[u8]) -> Loaded {
    let g = gltf::Gltf::from_slice(glb).expect("gltf crate parses the GLB");
    let bin = g.blob.as_deref().expect("BIN chunk");
    let mut faces = 0;
    let (mut pos, mut uvs) = (Vec::new(), Vec::new());
    for mesh in g.meshes() {
        for prim in mesh.primitives() {
            let reader = prim.reader(|_| Some(bin));
            faces += reader.read_indices().expect("indices").into_u32().count() / 3;
            pos.extend(reader.read_positions().expect("positions"));
            if let Some(t) = reader.read_tex_coords(0) {
                uvs.extend(t.into_f32());
            }
        }
    }
    let sizes = g
        .images()
        .map(|img| match img.source() {
            gltf::image::Source::View { view, .. } => {
                let start = view.offset();
                image_size(&bin[start..start + view.length()])
            }
            gltf::image::Source::Uri { .. } => panic!("images must be embedded"),
        })
        .collect();
    (faces, sizes, pos, uvs)
}

#[test]
fn remesh_path_png_is_valid_and_colours_line_up() {
    let input = asset(64);
    assert!(input.mesh.faces.len() > 10_000);
    let params = GlbParams {
        decimation_target: 8_000,
        texture_size: 512,
        ..GlbParams::default()
    };
    let (glb, tm, report) = to_glb(&input, &params).unwrap();
    assert_valid(&glb, "remesh_png");
    // The full importer (with PNG decoding) must accept it too.
    let (_, _, images) = gltf::import_slice(&glb).expect("gltf::import_slice");
    assert_eq!(images.len(), 2);
    for img in &images {
        assert_eq!((img.width, img.height), (512, 512));
    }
    let (faces, sizes, pos, uvs) = load_back(&glb);
    assert!(
        faces <= params.decimation_target,
        "{faces} faces > target ({report:?})"
    );
    assert!(
        faces * 2 >= params.decimation_target,
        "decimated far below target: {faces}"
    );
    assert_eq!(sizes, vec![(512, 512), (512, 512)]);
    assert!(!tm.double_sided);

    // Colour at each vertex's UV (nearest texel, texel row = v·size) vs the voxel field at the
    // vertex snapped onto the original surface. The pattern changes slowly, so the mean error
    // is a few 8-bit steps; a flipped v or a wrong axis swap gives errors ~0.2–0.3.
    let base = image::load_from_memory(&images_bytes(&glb)[0])
        .unwrap()
        .to_rgba8();
    let field = VoxelField::new(&input).unwrap();
    let bvh = Bvh::new(&input.mesh.vertices, &input.mesh.faces).unwrap();
    let mut err = 0.0f64;
    for (p, uv) in pos.iter().zip(&uvs) {
        let z_up = [p[0], -p[2], p[1]];
        let want = field.sample(bvh.closest(z_up).point);
        let (x, y) = ((uv[0] * 512.0) as u32, (uv[1] * 512.0) as u32);
        let got = base.get_pixel(x.min(511), y.min(511));
        err += (0..3)
            .map(|c| (got[c] as f64 / 255.0 - want[c] as f64).abs())
            .sum::<f64>()
            / 3.0;
    }
    let mean = err / pos.len() as f64;
    assert!(mean < 0.03, "mean colour error at vertex UVs {mean}");
}

/// The embedded image bytes, in image order.
fn images_bytes(glb: &[u8]) -> Vec<Vec<u8>> {
    let g = gltf::Gltf::from_slice(glb).unwrap();
    let bin = g.blob.as_deref().unwrap();
    g.images()
        .map(|img| match img.source() {
            gltf::image::Source::View { view, .. } => {
                bin[view.offset()..view.offset() + view.length()].to_vec()
            }
            gltf::image::Source::Uri { .. } => unreachable!(),
        })
        .collect()
}

#[test]
fn non_remesh_path_webp_is_valid() {
    let input = asset(64);
    let params = GlbParams {
        decimation_target: 5_000,
        texture_size: 1024,
        remesh: false,
        remesh_project: 0.9,
        texture_format: TextureFormat::Webp,
        ..GlbParams::default()
    };
    let (glb, tm, _) = to_glb(&input, &params).unwrap();
    let report = assert_valid(&glb, "plain_webp");
    assert!(tm.double_sided);
    let (faces, sizes, _, _) = load_back(&glb);
    assert!(faces <= 5_000, "{faces}");
    // Two PNG sources plus their two WebP twins.
    assert_eq!(sizes, vec![(1024, 1024); 4]);
    let used = report["info"]["extensionsUsed"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(used.iter().any(|e| e == "EXT_texture_webp"), "{used:?}");
}

#[test]
fn mesh_only_glb_is_valid() {
    let input = asset(32);
    let glb = write_mesh_glb(&input.mesh).unwrap();
    assert_valid(&glb, "mesh_only");
    let (faces, sizes, _, _) = load_back(&glb);
    assert_eq!(faces, input.mesh.faces.len());
    assert!(sizes.is_empty());
}

#[test]
fn bad_params_are_typed_errors() {
    let input = asset(32);
    for p in [
        GlbParams {
            texture_size: 300,
            ..GlbParams::default()
        },
        GlbParams {
            decimation_target: 0,
            ..GlbParams::default()
        },
        GlbParams {
            remesh_project: 1.5,
            ..GlbParams::default()
        },
        GlbParams {
            remesh_band: f32::NAN,
            ..GlbParams::default()
        },
    ] {
        assert!(to_glb(&input, &p).is_err(), "{p:?}");
    }
    let mut broken = input.clone();
    broken.mesh.faces.push([0, 1, u32::MAX]);
    assert!(to_glb(&broken, &GlbParams::default()).is_err());
    let mut broken = input;
    broken.attrs.pop();
    assert!(to_glb(&broken, &GlbParams::default()).is_err());
}
