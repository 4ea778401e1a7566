//! OBJ/MTL/PNG and binary PLY exports, read back with independent parsers (`tobj`, `ply-rs-bw`,
//! `image`). Values must come back bit-exact: OBJ floats are written in shortest round-trip form
//! and PLY stores raw f32, so the only transforms are the documented ones (Z-up → Y-up,
//! `v → 1 − v`, 1-based OBJ indices).

use std::io::{BufReader, Cursor};

use ply_rs_bw as ply;
use t2_mesh::export::{
    ExportError, ExportOptions, UpAxis, textured_to_obj, textured_to_ply, trimesh_to_obj,
    trimesh_to_ply,
};
use t2_mesh::{Texture, TexturedMesh, TriMesh};

/// A bent strip of `n` quads with distinct, non-round coordinates, normals and UVs.
fn strip(n: usize) -> TexturedMesh {
    let mut m = TexturedMesh::default();
    for i in 0..=n {
        let t = i as f32 / n as f32;
        for side in 0..2 {
            let s = side as f32;
            m.positions.push([
                t * 0.9 - 0.45,
                0.1 * (t * 7.3).sin() + s * 0.3,
                0.2 * t * t - 0.1 * s,
            ]);
            let nz = 1.0 / (1.0 + t);
            m.normals.push([0.1 * t, -0.2 * s, nz]);
            m.uvs.push([t * 0.97 + 0.01, 0.013 + s * 0.77]);
        }
    }
    for i in 0..n as u32 {
        let (a, b, c, d) = (2 * i, 2 * i + 1, 2 * i + 2, 2 * i + 3);
        m.faces.push([a, c, b]);
        m.faces.push([b, c, d]);
    }
    m.base_color = Texture {
        width: 5,
        height: 3,
        channels: 4,
        data: (0..5 * 3 * 4).map(|i| (i * 17 % 256) as u8).collect(),
    };
    m.metallic_roughness = Texture {
        width: 4,
        height: 2,
        channels: 3,
        data: (0..4 * 2 * 3).map(|i| (i * 29 % 256) as u8).collect(),
    };
    m
}

fn y_up(p: [f32; 3]) -> [f32; 3] {
    [p[0], p[2], -p[1]]
}

fn load_obj(
    files: &t2_mesh::export::ObjFiles,
    obj: &str,
) -> (Vec<tobj::Model>, Vec<tobj::Material>) {
    let bytes = files.get(obj).expect("obj file present");
    let opts = tobj::LoadOptions {
        single_index: true,
        triangulate: true,
        ..Default::default()
    };
    let (models, mats) = tobj::load_obj_buf(&mut BufReader::new(bytes), &opts, |p| {
        let name = p.to_str().unwrap();
        let mtl = files
            .get(name)
            .unwrap_or_else(|| panic!("mtllib names {name}, not in the set"));
        tobj::load_mtl_buf(&mut BufReader::new(mtl))
    })
    .expect("tobj parses the OBJ");
    (models, mats.expect("tobj parses the MTL"))
}

#[test]
fn textured_obj_round_trips_through_tobj_with_mtl_and_pngs() {
    let m = strip(7);
    let files = textured_to_obj(&m, "asset", &ExportOptions::default()).unwrap();
    let names: Vec<&str> = files.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "asset.obj",
            "asset.mtl",
            "asset_basecolor.png",
            "asset_alpha.png",
            "asset_roughness.png",
            "asset_metallic.png"
        ]
    );
    let (models, mats) = load_obj(&files, "asset.obj");
    assert_eq!(models.len(), 1);
    let mesh = &models[0].mesh;
    assert_eq!(mesh.indices.len(), m.faces.len() * 3);
    // Compare per face corner, so the loader's own vertex numbering does not matter.
    for (k, f) in m.faces.iter().enumerate() {
        for (j, &v) in f.iter().enumerate() {
            let t = mesh.indices[3 * k + j] as usize;
            let v = v as usize;
            assert_eq!(
                &mesh.positions[3 * t..3 * t + 3],
                &y_up(m.positions[v]),
                "position f{k}.{j}"
            );
            assert_eq!(
                &mesh.normals[3 * t..3 * t + 3],
                &y_up(m.normals[v]),
                "normal f{k}.{j}"
            );
            let uv = m.uvs[v];
            assert_eq!(
                &mesh.texcoords[2 * t..2 * t + 2],
                &[uv[0], 1.0 - uv[1]],
                "uv f{k}.{j}"
            );
        }
    }
    assert_eq!(mats.len(), 1);
    let mat = &mats[0];
    assert_eq!(mesh.material_id, Some(0));
    assert_eq!(mat.diffuse_texture.as_deref(), Some("asset_basecolor.png"));
    assert_eq!(mat.dissolve_texture.as_deref(), Some("asset_alpha.png"));
    assert_eq!(
        mat.unknown_param.get("map_Pr").map(String::as_str),
        Some("asset_roughness.png")
    );
    assert_eq!(
        mat.unknown_param.get("map_Pm").map(String::as_str),
        Some("asset_metallic.png")
    );

    // The PNGs hold exactly the texture channels they are named after.
    let decode = |name: &str| image::load_from_memory(files.get(name).unwrap()).unwrap();
    let bc = decode("asset_basecolor.png").to_rgb8();
    let alpha = decode("asset_alpha.png").to_luma8();
    let rough = decode("asset_roughness.png").to_luma8();
    let metal = decode("asset_metallic.png").to_luma8();
    assert_eq!((bc.width(), bc.height()), (5, 3));
    for (i, px) in m.base_color.data.chunks_exact(4).enumerate() {
        let (x, y) = ((i % 5) as u32, (i / 5) as u32);
        assert_eq!(bc.get_pixel(x, y).0, [px[0], px[1], px[2]]);
        assert_eq!(alpha.get_pixel(x, y).0, [px[3]]);
    }
    for (i, px) in m.metallic_roughness.data.chunks_exact(3).enumerate() {
        let (x, y) = ((i % 4) as u32, (i / 4) as u32);
        assert_eq!(rough.get_pixel(x, y).0, [px[1]], "roughness is G");
        assert_eq!(metal.get_pixel(x, y).0, [px[2]], "metallic is B");
    }
}

#[test]
fn opaque_base_colour_writes_no_alpha_map_and_untextured_mesh_is_obj_only() {
    let mut m = strip(2);
    for px in m.base_color.data.chunks_exact_mut(4) {
        px[3] = 255;
    }
    let files = textured_to_obj(&m, "a", &ExportOptions::default()).unwrap();
    assert!(files.get("a_alpha.png").is_none());
    assert!(!String::from_utf8_lossy(files.get("a.mtl").unwrap()).contains("map_d"));

    m.base_color = Texture::default();
    m.metallic_roughness = Texture::default();
    let files = textured_to_obj(&m, "plain", &ExportOptions::default()).unwrap();
    assert_eq!(files.files.len(), 1);
    let text = String::from_utf8(files.get("plain.obj").unwrap().to_vec()).unwrap();
    assert!(!text.contains("mtllib") && text.contains("\nvt ") && text.contains("\nvn "));
}

#[test]
fn trimesh_obj_keeps_z_up_on_request() {
    let m = strip(3);
    let tri = TriMesh {
        vertices: m.positions.clone(),
        faces: m.faces.clone(),
    };
    let obj = trimesh_to_obj(&tri, &ExportOptions { up_axis: UpAxis::Z }).unwrap();
    let opts = tobj::LoadOptions {
        triangulate: true,
        ..Default::default()
    };
    let (models, _) = tobj::load_obj_buf(
        &mut BufReader::new(obj.as_slice()),
        &opts,
        |_| unreachable!(),
    )
    .unwrap();
    let mesh = &models[0].mesh;
    assert!(mesh.texcoords.is_empty() && mesh.normals.is_empty());
    assert_eq!(mesh.indices.len(), tri.faces.len() * 3);
    // tobj renumbers vertices in first-use order: compare per face corner, unrotated.
    for (k, f) in tri.faces.iter().enumerate() {
        for (j, &v) in f.iter().enumerate() {
            let t = mesh.indices[3 * k + j] as usize;
            assert_eq!(
                &mesh.positions[3 * t..3 * t + 3],
                &tri.vertices[v as usize],
                "f{k}.{j}"
            );
        }
    }
}

fn read_ply(bytes: &[u8]) -> ply::ply::Ply<ply::ply::DefaultElement> {
    ply::parser::Parser::<ply::ply::DefaultElement>::new()
        .read_ply(&mut Cursor::new(bytes))
        .expect("ply-rs parses the PLY")
}

fn float(e: &ply::ply::DefaultElement, k: &str) -> f32 {
    match e.get(k) {
        Some(ply::ply::Property::Float(v)) => *v,
        other => panic!("{k}: {other:?}"),
    }
}

#[test]
fn textured_ply_round_trips_through_ply_rs() {
    let m = strip(5);
    let bytes = textured_to_ply(&m, &ExportOptions::default()).unwrap();
    let p = read_ply(&bytes);
    assert_eq!(p.header.encoding, ply::ply::Encoding::BinaryLittleEndian);
    let verts = &p.payload["vertex"];
    let faces = &p.payload["face"];
    assert_eq!(
        (verts.len(), faces.len()),
        (m.positions.len(), m.faces.len())
    );
    for (i, v) in verts.iter().enumerate() {
        assert_eq!(
            [float(v, "x"), float(v, "y"), float(v, "z")],
            y_up(m.positions[i])
        );
        assert_eq!(
            [float(v, "nx"), float(v, "ny"), float(v, "nz")],
            y_up(m.normals[i])
        );
        assert_eq!(
            [float(v, "s"), float(v, "t")],
            [m.uvs[i][0], 1.0 - m.uvs[i][1]]
        );
    }
    for (f, want) in faces.iter().zip(&m.faces) {
        match f.get("vertex_indices") {
            Some(ply::ply::Property::ListInt(ix)) => {
                assert_eq!(ix, &want.map(|v| v as i32).to_vec())
            }
            other => panic!("vertex_indices: {other:?}"),
        }
    }
}

#[test]
fn trimesh_ply_has_positions_only() {
    let m = strip(2);
    let tri = TriMesh {
        vertices: m.positions.clone(),
        faces: m.faces.clone(),
    };
    let p = read_ply(&trimesh_to_ply(&tri, &ExportOptions { up_axis: UpAxis::Z }).unwrap());
    let v0 = &p.payload["vertex"][0];
    assert_eq!(v0.len(), 3, "only x y z");
    assert_eq!(
        [float(v0, "x"), float(v0, "y"), float(v0, "z")],
        tri.vertices[0]
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let good = strip(2);
    let mut m = good.clone();
    m.faces.push([0, 1, 99]);
    assert!(matches!(
        textured_to_ply(&m, &ExportOptions::default()),
        Err(ExportError::InvalidMesh(_))
    ));
    let mut m = good.clone();
    m.uvs.pop();
    assert!(matches!(
        textured_to_obj(&m, "x", &ExportOptions::default()),
        Err(ExportError::InvalidMesh(_))
    ));
    let mut m = good.clone();
    m.positions[0][1] = f32::NAN;
    assert!(matches!(
        textured_to_ply(&m, &ExportOptions::default()),
        Err(ExportError::InvalidMesh(_))
    ));
    let mut m = good.clone();
    m.base_color.data.pop();
    assert!(matches!(
        textured_to_obj(&m, "x", &ExportOptions::default()),
        Err(ExportError::InvalidTexture(_))
    ));
    for name in ["", "../evil", "a/b", ".hidden", "sp ace"] {
        let err = textured_to_obj(&good, name, &ExportOptions::default()).unwrap_err();
        assert!(matches!(err, ExportError::InvalidName(_)), "{name:?}");
        assert!(err.is_invalid_input());
    }
}
