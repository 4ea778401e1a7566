//! Pinhole cameras in the reference's conventions and the turntable path of its `render_video`.
//!
//! Conventions (utils3d, as TRELLIS.2 uses them): the world is Z-up; extrinsics are OpenCV-style
//! (camera x right, y down, z forward); intrinsics are normalised (`fx = 0.5 / tan(fov / 2)`,
//! principal point 0.5), so image row 0 is the top of the picture.

use super::RenderError;

/// A perspective camera with equal horizontal and vertical field of view (square images).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Camera centre in world space.
    pub eye: [f32; 3],
    /// World → camera rotation, rows = camera x (right), y (down), z (forward) in world space.
    pub rotation: [[f32; 3]; 3],
    /// Normalised focal length: `0.5 / tan(fov / 2)` (image coordinates in `[0, 1]`).
    pub focal: f32,
}

impl Camera {
    /// The reference's `yaw_pitch_r_fov_to_extrinsics_intrinsics` for one view: the eye sits at
    /// `r · (sin yaw · cos pitch, cos yaw · cos pitch, sin pitch)` and looks at the origin, Z up.
    pub fn orbit(yaw: f32, pitch: f32, radius: f32, fov_deg: f32) -> Result<Self, RenderError> {
        if !(radius.is_finite() && radius > 0.0) {
            return Err(RenderError::InvalidOptions(format!(
                "camera radius must be positive and finite, got {radius}"
            )));
        }
        if !(yaw.is_finite() && pitch.is_finite()) {
            return Err(RenderError::InvalidOptions(format!(
                "camera yaw/pitch must be finite, got {yaw}/{pitch}"
            )));
        }
        let eye = [
            yaw.sin() * pitch.cos() * radius,
            yaw.cos() * pitch.cos() * radius,
            pitch.sin() * radius,
        ];
        Self::look_at(eye, [0.0; 3], [0.0, 0.0, 1.0], fov_deg)
    }

    /// utils3d's `extrinsics_look_at`: `z = normalize(target - eye)`, `x = normalize(-up × z)`,
    /// `y = z × x` (so `up` maps to the image's −y, i.e. upwards on screen).
    pub fn look_at(
        eye: [f32; 3],
        target: [f32; 3],
        up: [f32; 3],
        fov_deg: f32,
    ) -> Result<Self, RenderError> {
        if !(fov_deg.is_finite() && fov_deg > 0.5 && fov_deg < 179.0) {
            return Err(RenderError::InvalidOptions(format!(
                "field of view must be in (0.5°, 179°), got {fov_deg}"
            )));
        }
        if !eye.iter().chain(&target).chain(&up).all(|v| v.is_finite()) {
            return Err(RenderError::InvalidOptions(
                "camera vectors must be finite".into(),
            ));
        }
        let z = normalize(sub(target, eye))
            .ok_or_else(|| RenderError::InvalidOptions("camera eye and target coincide".into()))?;
        let up = normalize(up)
            .ok_or_else(|| RenderError::InvalidOptions("camera up vector is zero".into()))?;
        let x = cross([-up[0], -up[1], -up[2]], z);
        // Both inputs are unit vectors, so |x| = sin(angle between them).
        let len = dot(x, x).sqrt();
        if len < 1e-5 {
            return Err(RenderError::InvalidOptions(
                "camera up vector is parallel to the view direction".into(),
            ));
        }
        let x = [x[0] / len, x[1] / len, x[2] / len];
        let y = cross(z, x);
        let focal = 0.5 / (fov_deg.to_radians() * 0.5).tan();
        Ok(Self {
            eye,
            rotation: [x, y, z],
            focal,
        })
    }

    /// World point → camera space (x right, y down, z forward).
    #[inline]
    pub fn to_camera(&self, p: [f32; 3]) -> [f32; 3] {
        let d = sub(p, self.eye);
        [
            dot(self.rotation[0], d),
            dot(self.rotation[1], d),
            dot(self.rotation[2], d),
        ]
    }

    /// World direction → camera space.
    #[inline]
    pub fn dir_to_camera(&self, d: [f32; 3]) -> [f32; 3] {
        [
            dot(self.rotation[0], d),
            dot(self.rotation[1], d),
            dot(self.rotation[2], d),
        ]
    }
}

/// The camera path of the reference's `render_video`: `num_frames` views with
/// `yaw = -linspace(0, 2·3.1415, n) + π/2` and `pitch = 0.25 + 0.5·sin(linspace(0, 2·3.1415, n))`.
/// The reference writes 3.1415, not π, and `linspace` includes both ends, so the last frame is
/// almost (not exactly) the first; kept as is so previews line up with the reference's.
pub fn turntable_cameras(
    num_frames: u32,
    radius: f32,
    fov_deg: f32,
) -> Result<Vec<Camera>, RenderError> {
    if num_frames == 0 {
        return Err(RenderError::InvalidOptions(
            "num_frames must be at least 1".into(),
        ));
    }
    // The reference's literal, deliberately not π (see above).
    #[allow(clippy::approx_constant)]
    const TWO_PI_REF: f64 = 2.0 * 3.1415;
    let n = num_frames as usize;
    (0..n)
        .map(|i| {
            let t = if n == 1 {
                0.0
            } else {
                TWO_PI_REF * i as f64 / (n - 1) as f64
            };
            let yaw = -t + std::f64::consts::FRAC_PI_2;
            let pitch = 0.25 + 0.5 * t.sin();
            Camera::orbit(yaw as f32, pitch as f32, radius, fov_deg)
        })
        .collect()
}

#[inline]
pub(crate) fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub(crate) fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub(crate) fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[inline]
pub(crate) fn normalize(a: [f32; 3]) -> Option<[f32; 3]> {
    let n = dot(a, a).sqrt();
    (n > 1e-20 && n.is_finite()).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orbit_looks_at_origin_with_z_up_on_screen() {
        let cam = Camera::orbit(0.0, 0.0, 2.0, 40.0).unwrap();
        // yaw 0, pitch 0: eye on +Y at distance 2.
        assert!((cam.eye[1] - 2.0).abs() < 1e-6 && cam.eye[0].abs() < 1e-6);
        let c = cam.to_camera([0.0; 3]);
        assert!(c[0].abs() < 1e-6 && c[1].abs() < 1e-6 && (c[2] - 2.0).abs() < 1e-6);
        // World +Z is up on screen, i.e. negative camera y.
        assert!(cam.to_camera([0.0, 0.0, 0.5])[1] < -0.49);
        // fx = 0.5 / tan(20°).
        assert!((cam.focal - 0.5 / 20f32.to_radians().tan()).abs() < 1e-6);
    }

    #[test]
    fn turntable_matches_reference_formula() {
        let cams = turntable_cameras(120, 2.0, 40.0).unwrap();
        assert_eq!(cams.len(), 120);
        // Frame 0: yaw π/2, pitch 0.25 → eye = 2·(cos .25, 0, sin .25).
        let e = cams[0].eye;
        assert!((e[0] - 2.0 * 0.25f32.cos()).abs() < 1e-5, "{e:?}");
        assert!(e[1].abs() < 1e-5 && (e[2] - 2.0 * 0.25f32.sin()).abs() < 1e-5);
        // Frame 30: t = 2·3.1415·30/119.
        #[allow(clippy::approx_constant)]
        let t = 2.0 * 3.1415f64 * 30.0 / 119.0;
        let (yaw, pitch) = (-t + std::f64::consts::FRAC_PI_2, 0.25 + 0.5 * t.sin());
        let want = [
            yaw.sin() * pitch.cos() * 2.0,
            yaw.cos() * pitch.cos() * 2.0,
            pitch.sin() * 2.0,
        ];
        for (got, want) in cams[30].eye.iter().zip(want) {
            assert!((*got as f64 - want).abs() < 1e-5);
        }
    }

    #[test]
    fn degenerate_cameras_are_typed_errors() {
        assert!(Camera::orbit(0.0, std::f32::consts::FRAC_PI_2, 2.0, 40.0).is_err());
        assert!(Camera::orbit(0.0, 0.0, 0.0, 40.0).is_err());
        assert!(Camera::orbit(0.0, 0.0, 2.0, 0.0).is_err());
        assert!(turntable_cameras(0, 2.0, 40.0).is_err());
    }
}
