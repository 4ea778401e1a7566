//! Snapshots of a known mesh: a 0.6-wide cube whose +X face carries a 2×2 colour pattern and whose
//! other faces are solid colours. Checked: silhouette position (from the pinhole formula),
//! anti-aliased edge coverage, orientation (no mirror, Z up on screen), texture sampling, the
//! normal view's encoding, the material views and the PNG/grid outputs.
//!
//! Set `T2_RENDER_DUMP=<dir>` to write the rendered images there for a look.

use t2_mesh::render::{
    Camera, Layout, RenderError, RenderOptions, SnapshotOptions, ViewImages, render_views,
    snapshot, snapshot_png,
};
use t2_mesh::{Texture, TexturedMesh};

const HALF: f32 = 0.3;
const CELL: usize = 16;
const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const YELLOW: [u8; 3] = [255, 255, 0];
const ORANGE: [u8; 3] = [255, 128, 0];

/// (outward normal, tangent along u, tangent along −v, solid colour).
type Face = ([f32; 3], [f32; 3], [f32; 3], [u8; 3]);

/// Faces in atlas-cell order.
const FACES: [Face; 6] = [
    ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0; 3]), // +X: the 2×2 pattern
    (
        [-1.0, 0.0, 0.0],
        [0.0, -1.0, 0.0],
        [0.0, 0.0, 1.0],
        [255, 255, 255],
    ),
    (
        [0.0, 1.0, 0.0],
        [-1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0, 255, 255],
    ),
    (
        [0.0, -1.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [255, 0, 255],
    ),
    ([0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], ORANGE),
    (
        [0.0, 0.0, -1.0],
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
        [128, 128, 128],
    ),
];

fn cube() -> TexturedMesh {
    let (w, h) = (6 * CELL, CELL);
    let mut tex = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let cell = x / CELL;
            let c = if cell == 0 {
                match (x % CELL < CELL / 2, y < CELL / 2) {
                    (true, true) => RED,
                    (false, true) => GREEN,
                    (true, false) => BLUE,
                    (false, false) => YELLOW,
                }
            } else {
                FACES[cell].3
            };
            tex[(y * w + x) * 4..][..4].copy_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    let mut m = TexturedMesh {
        base_color: Texture {
            width: w as u32,
            height: h as u32,
            channels: 4,
            data: tex,
        },
        // R unused, G = roughness 200, B = metallic 50.
        metallic_roughness: Texture {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![0, 200, 50],
        },
        ..Default::default()
    };
    for (k, (n, t, b, _)) in FACES.iter().enumerate() {
        let base = m.positions.len() as u32;
        // Corners (s, r) ∈ {−1, 1}²: s along u, r along "up" of the cell (v = 0 at r = +1).
        for (s, r) in [(-1.0f32, 1.0f32), (1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)] {
            m.positions
                .push([0, 1, 2].map(|i| HALF * (n[i] + s * t[i] + r * b[i])));
            m.normals.push(*n);
            // Inset by one texel so bilinear filtering never reads a neighbouring cell.
            let u = (k * CELL) as f32 + 1.0 + (s + 1.0) * 0.5 * (CELL as f32 - 2.0);
            let v = 1.0 + (1.0 - r) * 0.5 * (CELL as f32 - 2.0);
            m.uvs.push([u / w as f32, v / h as f32]);
        }
        m.faces.push([base, base + 1, base + 2]);
        m.faces.push([base, base + 2, base + 3]);
    }
    m
}

fn opts(resolution: u32) -> RenderOptions {
    RenderOptions {
        resolution,
        ..Default::default()
    }
}

fn dump(name: &str, img: &image::RgbImage) {
    if let Ok(dir) = std::env::var("T2_RENDER_DUMP") {
        img.save(std::path::Path::new(&dir).join(name)).unwrap();
    }
}

fn dump_views(prefix: &str, v: &ViewImages) {
    for (n, img) in [
        ("shaded", &v.shaded),
        ("normal", &v.normal),
        ("base_color", &v.base_color),
        ("metallic", &v.metallic),
        ("roughness", &v.roughness),
        ("alpha", &v.alpha),
    ] {
        dump(&format!("{prefix}_{n}.png"), img);
    }
}

fn px(img: &image::RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

#[test]
fn front_view_silhouette_orientation_and_views() {
    const R: u32 = 64;
    // yaw π/2, pitch 0: the eye is on +X looking at the +X face; image right = +Y, up = +Z.
    let cam = Camera::orbit(std::f32::consts::FRAC_PI_2, 0.0, 2.0, 40.0).unwrap();
    let v = render_views(&cube(), &cam, &opts(R)).unwrap();
    dump_views("front", &v);

    // The +X face spans ±HALF at depth 2 − HALF: its edges project to 0.5 ± f·HALF/(2 − HALF).
    let focal = 0.5 / 20f32.to_radians().tan();
    let lo = (0.5 - focal * HALF / (2.0 - HALF)) * R as f32;
    let hi = (0.5 + focal * HALF / (2.0 - HALF)) * R as f32;
    let mid = R / 2;
    for x in 0..R {
        let (x0, x1) = (x as f32, x as f32 + 1.0);
        let a = v.alpha.get_pixel(x, mid)[0];
        if x0 >= lo && x1 <= hi {
            assert_eq!(a, 255, "inside at x={x}");
        } else if x1 <= lo || x0 >= hi {
            assert_eq!(a, 0, "outside at x={x}");
            assert_eq!(px(&v.shaded, x, mid), [0; 3], "background is black");
            assert_eq!(
                px(&v.normal, x, mid),
                [127; 3],
                "normal background is ½ grey"
            );
        } else {
            // An edge pixel: SSAA ×2 samples at x + ¼ and x + ¾ (two rows each).
            let inside = [0.25, 0.75]
                .iter()
                .filter(|&&s| (lo..=hi).contains(&(x0 + s)))
                .count();
            let want = (255.0 * inside as f32 / 2.0) as u8;
            assert!(a.abs_diff(want) <= 1, "edge x={x}: alpha {a}, want {want}");
        }
    }

    // Orientation: texture top-left (red) shows at the image's top-left, and so on.
    let (q0, q1) = (mid - 8, mid + 8);
    assert_eq!(px(&v.base_color, q0, q0), RED);
    assert_eq!(px(&v.base_color, q1, q0), GREEN);
    assert_eq!(px(&v.base_color, q0, q1), BLUE);
    assert_eq!(px(&v.base_color, q1, q1), YELLOW);

    // Normal view: the face normal (+X) is −z in camera space → (½, ½, 1).
    let n = px(&v.normal, mid + 3, mid + 3);
    assert!(
        n[0].abs_diff(127) <= 1 && n[1].abs_diff(127) <= 1 && n[2] >= 254,
        "{n:?}"
    );
    // Material views (±1 for bilinear arithmetic and truncation).
    assert!(px(&v.roughness, mid, mid)[0].abs_diff(200) <= 1);
    assert!(px(&v.metallic, mid, mid)[0].abs_diff(50) <= 1);

    // Shaded keeps the hue of each quadrant and is lit (not black, not saturated white).
    let red = px(&v.shaded, q0, q0);
    assert!(
        red[0] > 60 && red[0] as u16 > 3 * red[1].max(red[2]) as u16,
        "{red:?}"
    );
    let blue = px(&v.shaded, q0, q1);
    assert!(
        blue[2] > 60 && blue[2] as u16 > 3 * blue[0].max(blue[1]) as u16,
        "{blue:?}"
    );

    // Deterministic.
    let again = render_views(&cube(), &cam, &opts(R)).unwrap();
    assert_eq!(again.shaded, v.shaded);
}

#[test]
fn looking_down_shows_the_top_face_above_the_front_face() {
    const R: u32 = 64;
    let cam = Camera::orbit(std::f32::consts::FRAC_PI_2, 0.6, 2.0, 40.0).unwrap();
    let v = render_views(&cube(), &cam, &opts(R)).unwrap();
    dump_views("above", &v);
    // Right of centre, clear of the pattern's vertical split.
    let col = R / 2 + 6;
    let first = (0..R)
        .find(|&y| v.alpha.get_pixel(col, y)[0] == 255)
        .expect("cube visible");
    assert_eq!(
        px(&v.base_color, col, first + 2),
        ORANGE,
        "top face first from the top"
    );
    let last = (0..R)
        .rev()
        .find(|&y| v.alpha.get_pixel(col, y)[0] == 255)
        .unwrap();
    let bottom = px(&v.base_color, col, last - 2);
    assert_eq!(
        bottom, YELLOW,
        "front face's lower-right quadrant at the bottom"
    );
    // The top face's normal is +Z: in camera space it points up the image (−y), so the normal
    // view's green channel (−n_y·½ + ½) is above ½ there.
    assert!(px(&v.normal, col, first + 2)[1] > 160);
}

#[test]
fn png_and_grid_outputs_match_the_views() {
    let mesh = cube();
    let o = SnapshotOptions {
        render: opts(32),
        layout: Layout::PbrGrid,
        ..Default::default()
    };
    let grid = snapshot(&mesh, &o).unwrap();
    assert_eq!(grid.dimensions(), (64, 48));
    let cam = Camera::orbit(o.yaw, o.pitch, o.radius, o.fov_deg).unwrap();
    let v = render_views(&mesh, &cam, &o.render).unwrap();
    for y in 0..32 {
        for x in 0..32 {
            assert_eq!(grid.get_pixel(x, y), v.shaded.get_pixel(x, y));
            assert_eq!(grid.get_pixel(32 + x, y), v.normal.get_pixel(x, y));
        }
    }
    // Bottom row: four half-size views; the alpha block is the coverage halved.
    let a = grid.get_pixel(48 + 8, 32 + 8)[0];
    assert_eq!(a, 255, "alpha block centre is covered");

    let png = snapshot_png(
        &mesh,
        &SnapshotOptions {
            render: opts(32),
            ..Default::default()
        },
    )
    .unwrap();
    let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
    assert_eq!(
        decoded.to_rgb8(),
        v.shaded,
        "default snapshot = shaded view of the first turntable frame"
    );
}

#[test]
fn textureless_mesh_renders_as_clay() {
    let mut m = cube();
    m.base_color = Texture::default();
    m.metallic_roughness = Texture::default();
    let cam = Camera::orbit(std::f32::consts::FRAC_PI_2, 0.0, 2.0, 40.0).unwrap();
    let v = render_views(&m, &cam, &opts(32)).unwrap();
    assert_eq!(px(&v.base_color, 16, 16), [204; 3]);
}

#[test]
fn bad_input_is_a_typed_error() {
    let cam = Camera::orbit(0.0, 0.3, 2.0, 40.0).unwrap();
    let mut m = cube();
    m.faces.push([0, 1, 1000]);
    assert!(matches!(
        render_views(&m, &cam, &opts(32)),
        Err(RenderError::InvalidMesh(_))
    ));
    let mut m = cube();
    m.base_color.data.truncate(10);
    assert!(matches!(
        render_views(&m, &cam, &opts(32)),
        Err(RenderError::InvalidTexture(_))
    ));
    let mut m = cube();
    m.normals.pop();
    assert!(matches!(
        render_views(&m, &cam, &opts(32)),
        Err(RenderError::InvalidMesh(_))
    ));
    assert!(matches!(
        render_views(&TexturedMesh::default(), &cam, &opts(32)),
        Err(RenderError::InvalidMesh(_))
    ));
    for bad in [
        RenderOptions {
            resolution: 30,
            ..Default::default()
        },
        RenderOptions {
            resolution: 0,
            ..Default::default()
        },
        RenderOptions {
            ssaa: 0,
            ..Default::default()
        },
        RenderOptions {
            near: 0.0,
            ..Default::default()
        },
        RenderOptions {
            resolution: 4096,
            ssaa: 4,
            ..Default::default()
        },
    ] {
        let err = render_views(&cube(), &cam, &bad).unwrap_err();
        assert!(
            matches!(err, RenderError::InvalidOptions(_)) && err.is_invalid_input(),
            "{bad:?}"
        );
    }
}
