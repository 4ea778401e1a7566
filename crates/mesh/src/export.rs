//! OBJ (+ MTL + PNG textures) and binary PLY writers for [`TriMesh`] and [`TexturedMesh`].
//!
//! Axes: the meshes are Z-up; by default the writers emit Y-up, `(x, y, z) → (x, z, −y)`, the
//! same turn the GLB writer applies, because OBJ/PLY consumers (Blender, MeshLab, three.js)
//! assume Y-up. UVs: [`TexturedMesh`] has `v = 0` at texture row 0 (the top of the PNG), while OBJ
//! and PLY put `v = 0` at the bottom, so both writers emit `1 − v`.
//!
//! OBJ materials use the widely read PBR extension of MTL (`Pr`/`Pm`, `map_Pr`/`map_Pm`): the
//! glTF metallic-roughness map is split into separate roughness and metallic greyscale PNGs,
//! and alpha goes to a `map_d` PNG only when the base colour is not fully opaque.

use std::fmt::Write as _;

use rayon::prelude::*;

use crate::types::{Texture, TexturedMesh, TriMesh};

/// Why an export failed: all but `Png` are caller errors (invalid argument).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid mesh for export: {0}")]
    InvalidMesh(String),
    #[error("invalid texture for export: {0}")]
    InvalidTexture(String),
    #[error("invalid export file name {0:?}: use 1–100 of [A-Za-z0-9._-], not starting with '.'")]
    InvalidName(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

impl ExportError {
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, Self::Png(_))
    }
}

/// Which axis points up in the written file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpAxis {
    /// `(x, y, z) → (x, z, −y)`, as glTF and most OBJ/PLY consumers expect.
    #[default]
    Y,
    /// The model's own frame, unchanged.
    Z,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    pub up_axis: UpAxis,
}

/// The files of one OBJ export, named after the base name given to [`textured_to_obj`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjFiles {
    /// `(file name, bytes)`: the `.obj` first, then the `.mtl` and PNGs it references, if any.
    pub files: Vec<(String, Vec<u8>)>,
}

impl ObjFiles {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

/// Geometry-only OBJ (`v` and `f` records).
pub fn trimesh_to_obj(mesh: &TriMesh, opts: &ExportOptions) -> Result<Vec<u8>, ExportError> {
    let g = Geometry::new(&mesh.vertices, &[], &[], &mesh.faces)?;
    Ok(write_obj(&g, opts, None).into_bytes())
}

/// OBJ with `vt`/`vn`; when the mesh has UVs and a base colour texture, also `<name>.mtl` and
/// the PNG textures it names. Without textures the result is the `.obj` alone.
pub fn textured_to_obj(
    mesh: &TexturedMesh,
    name: &str,
    opts: &ExportOptions,
) -> Result<ObjFiles, ExportError> {
    check_name(name)?;
    let g = Geometry::new(&mesh.positions, &mesh.normals, &mesh.uvs, &mesh.faces)?;
    check_texture("base_color", &mesh.base_color, &[3, 4])?;
    check_texture("metallic_roughness", &mesh.metallic_roughness, &[3, 4])?;
    let has_base = !mesh.base_color.data.is_empty();
    let has_mr = !mesh.metallic_roughness.data.is_empty();
    if g.uvs.is_empty() || !has_base {
        let obj = write_obj(&g, opts, None).into_bytes();
        return Ok(ObjFiles {
            files: vec![(format!("{name}.obj"), obj)],
        });
    }

    // Textures to write: (file name, texture, channel picks).
    let mut pngs: Vec<(String, &Texture, Vec<usize>)> = vec![(
        format!("{name}_basecolor.png"),
        &mesh.base_color,
        vec![0, 1, 2],
    )];
    let bc = &mesh.base_color;
    let has_alpha = bc.channels == 4 && bc.data.chunks_exact(4).any(|p| p[3] != 255);
    if has_alpha {
        pngs.push((format!("{name}_alpha.png"), bc, vec![3]));
    }
    if has_mr {
        let mr = &mesh.metallic_roughness;
        pngs.push((format!("{name}_roughness.png"), mr, vec![1]));
        pngs.push((format!("{name}_metallic.png"), mr, vec![2]));
    }

    let mut mtl = String::new();
    let _ = writeln!(mtl, "# t2-mesh material for {name}.obj");
    let _ = writeln!(mtl, "newmtl {name}_material");
    mtl.push_str("Ka 0 0 0\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n");
    let _ = writeln!(mtl, "map_Kd {name}_basecolor.png");
    if has_alpha {
        let _ = writeln!(mtl, "map_d {name}_alpha.png");
    }
    if has_mr {
        // Factors of 1, as glTF: the maps carry the values.
        let _ = writeln!(
            mtl,
            "Pr 1\nPm 1\nmap_Pr {name}_roughness.png\nmap_Pm {name}_metallic.png"
        );
    }

    let encoded: Vec<(String, Vec<u8>)> = pngs
        .into_par_iter()
        .map(|(file, tex, picks)| Ok((file, encode_png(tex, &picks)?)))
        .collect::<Result<_, ExportError>>()?;

    let obj = write_obj(&g, opts, Some(name)).into_bytes();
    let mut files = vec![
        (format!("{name}.obj"), obj),
        (format!("{name}.mtl"), mtl.into_bytes()),
    ];
    files.extend(encoded);
    Ok(ObjFiles { files })
}

/// Binary little-endian PLY with positions and triangle faces.
pub fn trimesh_to_ply(mesh: &TriMesh, opts: &ExportOptions) -> Result<Vec<u8>, ExportError> {
    Ok(write_ply(
        &Geometry::new(&mesh.vertices, &[], &[], &mesh.faces)?,
        opts,
    ))
}

/// Binary little-endian PLY with positions, normals (`nx ny nz`) and UVs (`s t`) when present.
/// Textures are not embedded (PLY has no standard for them); export OBJ for a textured file set.
pub fn textured_to_ply(mesh: &TexturedMesh, opts: &ExportOptions) -> Result<Vec<u8>, ExportError> {
    let g = Geometry::new(&mesh.positions, &mesh.normals, &mesh.uvs, &mesh.faces)?;
    Ok(write_ply(&g, opts))
}

/// Checked views of the arrays shared by both formats.
struct Geometry<'a> {
    positions: &'a [[f32; 3]],
    normals: &'a [[f32; 3]],
    uvs: &'a [[f32; 2]],
    faces: &'a [[u32; 3]],
}

impl<'a> Geometry<'a> {
    fn new(
        positions: &'a [[f32; 3]],
        normals: &'a [[f32; 3]],
        uvs: &'a [[f32; 2]],
        faces: &'a [[u32; 3]],
    ) -> Result<Self, ExportError> {
        let bad = |m: String| Err(ExportError::InvalidMesh(m));
        let n = positions.len();
        // PLY indices are written as signed 32-bit ints, OBJ's are 1-based.
        if n >= i32::MAX as usize {
            return bad(format!("{n} vertices exceed 32-bit indexing"));
        }
        if !normals.is_empty() && normals.len() != n {
            return bad(format!("{} normals for {n} vertices", normals.len()));
        }
        if !uvs.is_empty() && uvs.len() != n {
            return bad(format!("{} uvs for {n} vertices", uvs.len()));
        }
        if let Some((i, f)) = faces
            .iter()
            .enumerate()
            .find(|(_, f)| f.iter().any(|&v| v as usize >= n))
        {
            return bad(format!("face {i} = {f:?} indexes past the {n} vertices"));
        }
        let finite = |v: &[f32]| v.iter().all(|c| c.is_finite());
        if let Some(i) = positions.iter().position(|p| !finite(p)) {
            return bad(format!("vertex {i} has a non-finite position"));
        }
        if let Some(i) = normals.iter().position(|p| !finite(p)) {
            return bad(format!("vertex {i} has a non-finite normal"));
        }
        if let Some(i) = uvs.iter().position(|p| !finite(p)) {
            return bad(format!("vertex {i} has a non-finite uv"));
        }
        Ok(Self {
            positions,
            normals,
            uvs,
            faces,
        })
    }
}

#[inline]
fn orient(p: [f32; 3], up: UpAxis) -> [f32; 3] {
    match up {
        UpAxis::Y => [p[0], p[2], -p[1]],
        UpAxis::Z => p,
    }
}

/// OBJ's and PLY's `v` runs bottom-up; ours runs down the rows.
#[inline]
fn flip_v(uv: [f32; 2]) -> [f32; 2] {
    [uv[0], 1.0 - uv[1]]
}

fn write_obj(g: &Geometry<'_>, opts: &ExportOptions, material: Option<&str>) -> String {
    // About 40 bytes per vertex record and 30 per face; one reservation avoids regrowth.
    let mut s = String::with_capacity(g.positions.len() * 100 + g.faces.len() * 40 + 256);
    s.push_str("# t2-mesh OBJ export\n");
    if let Some(name) = material {
        let _ = writeln!(s, "mtllib {name}.mtl");
    }
    // `{}` prints the shortest text that parses back to the same f32, so the file round-trips.
    for p in g.positions {
        let [x, y, z] = orient(*p, opts.up_axis);
        let _ = writeln!(s, "v {x} {y} {z}");
    }
    for uv in g.uvs {
        let [u, v] = flip_v(*uv);
        let _ = writeln!(s, "vt {u} {v}");
    }
    for n in g.normals {
        let [x, y, z] = orient(*n, opts.up_axis);
        let _ = writeln!(s, "vn {x} {y} {z}");
    }
    if let Some(name) = material {
        let _ = writeln!(s, "usemtl {name}_material");
    }
    let (has_uv, has_n) = (!g.uvs.is_empty(), !g.normals.is_empty());
    for f in g.faces {
        s.push('f');
        for &v in f {
            let i = v as u64 + 1;
            let _ = match (has_uv, has_n) {
                (true, true) => write!(s, " {i}/{i}/{i}"),
                (true, false) => write!(s, " {i}/{i}"),
                (false, true) => write!(s, " {i}//{i}"),
                (false, false) => write!(s, " {i}"),
            };
        }
        s.push('\n');
    }
    s
}

fn write_ply(g: &Geometry<'_>, opts: &ExportOptions) -> Vec<u8> {
    let (has_uv, has_n) = (!g.uvs.is_empty(), !g.normals.is_empty());
    let mut header = String::from("ply\nformat binary_little_endian 1.0\ncomment t2-mesh export\n");
    let _ = writeln!(header, "element vertex {}", g.positions.len());
    header.push_str("property float x\nproperty float y\nproperty float z\n");
    if has_n {
        header.push_str("property float nx\nproperty float ny\nproperty float nz\n");
    }
    if has_uv {
        header.push_str("property float s\nproperty float t\n");
    }
    let _ = writeln!(header, "element face {}", g.faces.len());
    header.push_str("property list uchar int vertex_indices\nend_header\n");

    let floats_per_vertex = 3 + 3 * has_n as usize + 2 * has_uv as usize;
    let mut out = Vec::with_capacity(
        header.len() + g.positions.len() * floats_per_vertex * 4 + g.faces.len() * 13,
    );
    out.extend_from_slice(header.as_bytes());
    for i in 0..g.positions.len() {
        for c in orient(g.positions[i], opts.up_axis) {
            out.extend_from_slice(&c.to_le_bytes());
        }
        if has_n {
            for c in orient(g.normals[i], opts.up_axis) {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        if has_uv {
            for c in flip_v(g.uvs[i]) {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
    }
    for f in g.faces {
        out.push(3);
        for &v in f {
            // In range: checked against the vertex count, itself < i32::MAX.
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
    }
    out
}

fn check_name(name: &str) -> Result<(), ExportError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ExportError::InvalidName(name.to_string()))
    }
}

fn check_texture(what: &str, t: &Texture, channels: &[u8]) -> Result<(), ExportError> {
    if t.data.is_empty() && (t.width == 0 || t.height == 0) {
        return Ok(());
    }
    if !channels.contains(&t.channels) {
        return Err(ExportError::InvalidTexture(format!(
            "{what}: {} channels, expected one of {channels:?}",
            t.channels
        )));
    }
    let want = t.width as usize * t.height as usize * t.channels as usize;
    if want == 0 || t.data.len() != want {
        return Err(ExportError::InvalidTexture(format!(
            "{what}: {} bytes for {}x{}x{}",
            t.data.len(),
            t.width,
            t.height,
            t.channels
        )));
    }
    Ok(())
}

/// PNG of the chosen channels of `t`: one pick → 8-bit grey, three → RGB.
fn encode_png(t: &Texture, picks: &[usize]) -> Result<Vec<u8>, ExportError> {
    let c = t.channels as usize;
    let data: Vec<u8> = t
        .data
        .chunks_exact(c)
        .flat_map(|px| picks.iter().map(move |&k| px[k]))
        .collect();
    let color = match picks.len() {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        n => return Err(ExportError::Png(format!("unsupported channel count {n}"))),
    };
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &data,
        t.width,
        t.height,
        color,
    )
    .map_err(|e| ExportError::Png(e.to_string()))?;
    Ok(out)
}
