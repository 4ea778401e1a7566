//! Small vector helpers on `[f32; 3]` (no linear-algebra crate needed for this much).

#[inline]
pub fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline]
pub fn add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
#[inline]
pub fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
#[inline]
pub fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline]
pub fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
#[inline]
pub fn norm(a: [f32; 3]) -> f32 {
    dot(a, a).sqrt()
}
#[inline]
pub fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = norm(a);
    if n > 0.0 { scale(a, 1.0 / n) } else { a }
}
#[inline]
pub fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    norm(sub(a, b))
}
/// Twice the area vector of triangle `(a, b, c)`.
#[inline]
pub fn tri_normal(a: [f32; 3], b: [f32; 3], c: [f32; 3]) -> [f32; 3] {
    cross(sub(b, a), sub(c, a))
}
#[inline]
pub fn tri_area(a: [f32; 3], b: [f32; 3], c: [f32; 3]) -> f32 {
    0.5 * norm(tri_normal(a, b, c))
}
