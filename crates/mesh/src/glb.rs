//! GLB writer (gltf-json): one mesh, one node, PBR metallic-roughness material with a
//! baseColorTexture (RGBA, alpha in A) and a metallicRoughnessTexture (R = 0, G = roughness,
//! B = metallic), `alphaMode = OPAQUE`. Positions and normals go from the model's Z-up frame to
//! glTF's Y-up frame, `(x, y, z) → (x, z, −y)`.
//!
//! UVs: the bake writes texel row `v · size`, which is glTF's own convention (v = 0 is the
//! first image row), so `v` is written unchanged. The reference flips `v ← 1 − v` in memory
//! and trimesh's exporter flips it back when writing the GLB, so the file's `v` is the baked one
//! there too.
//!
//! Textures are PNG by default. On request they are also written as lossless WebP through
//! `EXT_texture_webp` (listed as used, not required), with the PNG kept as the core `source`:
//! the core spec only allows PNG/JPEG there (the Khronos validator rejects WebP), and loaders
//! without the extension — the `gltf` crate among them — refuse a file that requires it. So a
//! WebP GLB carries both encodings and loads everywhere; WebP-capable viewers take the WebP.

use std::io::Cursor;

use gltf_json as json;
use json::validation::{Checked::Valid, USize64};
use json::{Index, Root};

use crate::error::{MeshError, check_faces, check_finite};
use crate::types::{Texture, TexturedMesh, TriMesh};

/// Image encoding for the embedded textures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextureFormat {
    #[default]
    Png,
    Webp,
}

impl TextureFormat {
    fn mime(self) -> &'static str {
        match self {
            TextureFormat::Png => "image/png",
            TextureFormat::Webp => "image/webp",
        }
    }
}

const WEBP_EXT: &str = "EXT_texture_webp";

#[inline]
fn z_up_to_y_up(p: [f32; 3]) -> [f32; 3] {
    [p[0], p[2], -p[1]]
}

/// Encodes an 8-bit texture as PNG or lossless WebP.
pub fn encode_texture(t: &Texture, format: TextureFormat) -> Result<Vec<u8>, MeshError> {
    use image::ImageEncoder;
    let color = match t.channels {
        3 => image::ExtendedColorType::Rgb8,
        4 => image::ExtendedColorType::Rgba8,
        c => {
            return Err(MeshError::Encode(format!(
                "{c}-channel textures are not supported"
            )));
        }
    };
    let expected = t.width as usize * t.height as usize * t.channels as usize;
    if t.data.len() != expected || t.width == 0 || t.height == 0 {
        return Err(MeshError::LengthMismatch {
            what: "texture bytes",
            expected,
            got: t.data.len(),
        });
    }
    if format == TextureFormat::Png {
        return crate::png::encode(&t.data, t.width, t.height, t.channels)
            .map_err(MeshError::Encode);
    }
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(Cursor::new(&mut out))
        .write_image(&t.data, t.width, t.height, color)
        .map_err(|e| MeshError::Encode(e.to_string()))?;
    Ok(out)
}

/// Accumulates the BIN chunk and the JSON objects that point into it.
struct Builder {
    root: Root,
    bin: Vec<u8>,
}

impl Builder {
    fn new() -> Self {
        let mut root = Root::default();
        root.asset.generator = Some("trellis2 t2-mesh".into());
        Builder {
            root,
            bin: Vec::new(),
        }
    }

    fn view(
        &mut self,
        bytes: &[u8],
        target: Option<json::buffer::Target>,
    ) -> Index<json::buffer::View> {
        while !self.bin.len().is_multiple_of(4) {
            self.bin.push(0);
        }
        let offset = self.bin.len();
        self.bin.extend_from_slice(bytes);
        self.root.push(json::buffer::View {
            buffer: Index::new(0),
            byte_length: USize64(bytes.len() as u64),
            byte_offset: Some(USize64(offset as u64)),
            byte_stride: None,
            name: None,
            target: target.map(Valid),
            extensions: None,
            extras: Default::default(),
        })
    }

    fn accessor<const N: usize>(
        &mut self,
        data: &[[f32; N]],
        type_: json::accessor::Type,
        with_bounds: bool,
    ) -> Index<json::Accessor> {
        let bytes: Vec<u8> = data
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view = self.view(&bytes, Some(json::buffer::Target::ArrayBuffer));
        let (min, max) = if with_bounds {
            let mut lo = [f32::INFINITY; N];
            let mut hi = [f32::NEG_INFINITY; N];
            for v in data {
                for k in 0..N {
                    lo[k] = lo[k].min(v[k]);
                    hi[k] = hi[k].max(v[k]);
                }
            }
            (
                Some(json::Value::from(lo.to_vec())),
                Some(json::Value::from(hi.to_vec())),
            )
        } else {
            (None, None)
        };
        self.root.push(json::Accessor {
            buffer_view: Some(view),
            byte_offset: None,
            count: USize64(data.len() as u64),
            component_type: Valid(json::accessor::GenericComponentType(
                json::accessor::ComponentType::F32,
            )),
            extensions: None,
            extras: Default::default(),
            type_: Valid(type_),
            min,
            max,
            name: None,
            normalized: false,
            sparse: None,
        })
    }

    fn indices(&mut self, faces: &[[u32; 3]]) -> Index<json::Accessor> {
        let bytes: Vec<u8> = faces
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view = self.view(&bytes, Some(json::buffer::Target::ElementArrayBuffer));
        self.root.push(json::Accessor {
            buffer_view: Some(view),
            byte_offset: None,
            count: USize64(faces.len() as u64 * 3),
            component_type: Valid(json::accessor::GenericComponentType(
                json::accessor::ComponentType::U32,
            )),
            extensions: None,
            extras: Default::default(),
            type_: Valid(json::accessor::Type::Scalar),
            min: None,
            max: None,
            name: None,
            normalized: false,
            sparse: None,
        })
    }

    fn image(&mut self, bytes: &[u8], format: TextureFormat) -> Index<json::Image> {
        let view = self.view(bytes, None);
        self.root.push(json::Image {
            buffer_view: Some(view),
            mime_type: Some(json::image::MimeType(format.mime().into())),
            name: None,
            uri: None,
            extensions: None,
            extras: Default::default(),
        })
    }

    fn texture(
        &mut self,
        t: &EncodedTexture,
        sampler: Index<json::texture::Sampler>,
    ) -> Index<json::Texture> {
        let png = self.image(&t.png, TextureFormat::Png);
        let extensions = t.webp.as_ref().map(|bytes| {
            let webp = self.image(bytes, TextureFormat::Webp);
            let mut ext = json::extensions::texture::Texture::default();
            ext.others.insert(
                WEBP_EXT.into(),
                serde_json::json!({ "source": webp.value() }),
            );
            ext
        });
        self.root.push(json::Texture {
            name: None,
            sampler: Some(sampler),
            source: png,
            extensions,
            extras: Default::default(),
        })
    }

    fn finish(
        mut self,
        primitive: json::mesh::Primitive,
        webp: bool,
    ) -> Result<Vec<u8>, MeshError> {
        let mesh = self.root.push(json::Mesh {
            extensions: None,
            extras: Default::default(),
            name: None,
            primitives: vec![primitive],
            weights: None,
        });
        let node = self.root.push(json::Node {
            mesh: Some(mesh),
            ..Default::default()
        });
        let scene = self.root.push(json::Scene {
            extensions: None,
            extras: Default::default(),
            name: None,
            nodes: vec![node],
        });
        self.root.scene = Some(scene);
        while !self.bin.len().is_multiple_of(4) {
            self.bin.push(0);
        }
        self.root.push(json::Buffer {
            byte_length: USize64(self.bin.len() as u64),
            name: None,
            uri: None,
            extensions: None,
            extras: Default::default(),
        });
        if webp {
            self.root.extensions_used.push(WEBP_EXT.into());
        }
        let value = serde_json::to_value(&self.root).map_err(|e| MeshError::Gltf(e.to_string()))?;
        let json_bytes = serde_json::to_vec(&value).map_err(|e| MeshError::Gltf(e.to_string()))?;
        Ok(glb_container(json_bytes, self.bin))
    }
}

/// The binary container: 12-byte header, JSON chunk (space-padded), BIN chunk (zero-padded).
fn glb_container(mut json_bytes: Vec<u8>, mut bin: Vec<u8>) -> Vec<u8> {
    while !json_bytes.len().is_multiple_of(4) {
        json_bytes.push(b' ');
    }
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let total = 12 + 8 + json_bytes.len() + 8 + bin.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json_bytes);
    out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin);
    out
}

fn primitive(
    attributes: Vec<(json::mesh::Semantic, Index<json::Accessor>)>,
    indices: Index<json::Accessor>,
    material: Option<Index<json::Material>>,
) -> json::mesh::Primitive {
    json::mesh::Primitive {
        attributes: attributes.into_iter().map(|(s, a)| (Valid(s), a)).collect(),
        extensions: None,
        extras: Default::default(),
        indices: Some(indices),
        material,
        mode: Valid(json::mesh::Mode::Triangles),
        targets: None,
    }
}

fn check_size(what: &'static str, bytes: usize) -> Result<(), MeshError> {
    // GLB lengths are u32.
    if bytes > u32::MAX as usize - 1024 {
        Err(MeshError::TooLarge { what, count: bytes })
    } else {
        Ok(())
    }
}

/// Writes a textured mesh as GLB bytes.
pub fn write_glb(m: &TexturedMesh, format: TextureFormat) -> Result<Vec<u8>, MeshError> {
    let n = m.positions.len();
    if m.faces.is_empty() || n == 0 {
        return Err(MeshError::Empty("GLB needs at least one face"));
    }
    for (what, got) in [("normals", m.normals.len()), ("uvs", m.uvs.len())] {
        if got != n {
            return Err(MeshError::LengthMismatch {
                what,
                expected: n,
                got,
            });
        }
    }
    check_faces(&m.faces, n)?;
    check_finite(&m.positions, "GLB positions")?;
    check_finite(&m.normals, "GLB normals")?;
    check_size("GLB geometry bytes", n * 32 + m.faces.len() * 12)?;
    let mut b = Builder::new();
    let pos: Vec<[f32; 3]> = m.positions.iter().map(|&p| z_up_to_y_up(p)).collect();
    let nrm: Vec<[f32; 3]> = m.normals.iter().map(|&p| z_up_to_y_up(p)).collect();
    let pa = b.accessor(&pos, json::accessor::Type::Vec3, true);
    let na = b.accessor(&nrm, json::accessor::Type::Vec3, false);
    let ta = b.accessor(&m.uvs, json::accessor::Type::Vec2, false);
    let ia = b.indices(&m.faces);
    let sampler = b.root.push(json::texture::Sampler {
        mag_filter: Some(Valid(json::texture::MagFilter::Linear)),
        min_filter: Some(Valid(json::texture::MinFilter::LinearMipmapLinear)),
        name: None,
        wrap_s: Valid(json::texture::WrappingMode::Repeat),
        wrap_t: Valid(json::texture::WrappingMode::Repeat),
        extensions: None,
        extras: Default::default(),
    });
    // Encoding is most of this step at 4096² (~0.6 s for two PNGs): the images in parallel.
    let (base, mr) = rayon::join(
        || EncodedTexture::new(&m.base_color, format),
        || EncodedTexture::new(&m.metallic_roughness, format),
    );
    let base = b.texture(&base?, sampler);
    let mr = b.texture(&mr?, sampler);
    let info = |index| json::texture::Info {
        index,
        tex_coord: 0,
        extensions: None,
        extras: Default::default(),
    };
    let material = b.root.push(json::Material {
        alpha_mode: Valid(json::material::AlphaMode::Opaque),
        double_sided: m.double_sided,
        pbr_metallic_roughness: json::material::PbrMetallicRoughness {
            base_color_texture: Some(info(base)),
            metallic_roughness_texture: Some(info(mr)),
            ..Default::default()
        },
        ..Default::default()
    });
    check_size("GLB", b.bin.len())?;
    let prim = primitive(
        vec![
            (json::mesh::Semantic::Positions, pa),
            (json::mesh::Semantic::Normals, na),
            (json::mesh::Semantic::TexCoords(0), ta),
        ],
        ia,
        Some(material),
    );
    b.finish(prim, format == TextureFormat::Webp)
}

/// A texture's image files: PNG always (core glTF's source), WebP too when asked for (the
/// `EXT_texture_webp` source, with the PNG as the fallback for viewers without it).
struct EncodedTexture {
    png: Vec<u8>,
    webp: Option<Vec<u8>>,
}

impl EncodedTexture {
    fn new(t: &Texture, format: TextureFormat) -> Result<Self, MeshError> {
        let (png, webp) = rayon::join(
            || encode_texture(t, TextureFormat::Png),
            || (format == TextureFormat::Webp).then(|| encode_texture(t, TextureFormat::Webp)),
        );
        Ok(EncodedTexture {
            png: png?,
            webp: webp.transpose()?,
        })
    }
}

/// Writes an untextured mesh (positions, area-weighted normals) as GLB bytes.
pub fn write_mesh_glb(m: &TriMesh) -> Result<Vec<u8>, MeshError> {
    if m.faces.is_empty() || m.vertices.is_empty() {
        return Err(MeshError::Empty("GLB needs at least one face"));
    }
    check_faces(&m.faces, m.vertices.len())?;
    check_finite(&m.vertices, "GLB positions")?;
    check_size(
        "GLB geometry bytes",
        m.vertices.len() * 24 + m.faces.len() * 12,
    )?;
    let normals = crate::cleanup::vertex_normals(&m.vertices, &m.faces);
    let mut b = Builder::new();
    let pos: Vec<[f32; 3]> = m.vertices.iter().map(|&p| z_up_to_y_up(p)).collect();
    let nrm: Vec<[f32; 3]> = normals.iter().map(|&p| z_up_to_y_up(p)).collect();
    let pa = b.accessor(&pos, json::accessor::Type::Vec3, true);
    let na = b.accessor(&nrm, json::accessor::Type::Vec3, false);
    let ia = b.indices(&m.faces);
    let prim = primitive(
        vec![
            (json::mesh::Semantic::Positions, pa),
            (json::mesh::Semantic::Normals, na),
        ],
        ia,
        None,
    );
    b.finish(prim, false)
}
