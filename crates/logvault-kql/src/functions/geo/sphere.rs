//! Measures and predicates on the sphere, as Kusto computes them: the Earth is a sphere of
//! radius 6,371,010 m (S2's), edges of lines and polygons are geodesics (great-circle arcs).
//! Points are S2 unit vectors; S2's own edge predicates (`crossing_sign`, `get_intersection`,
//! `interpolate`) are used where they exist.

use std::f64::consts::PI;

use s2::edge_crossings::{Crossing, crossing_sign, get_intersection};
use s2::point::Point;
use s2::r3::vector::Vector;

use super::shape::{Ll, Rings, coord, point};

/// The Earth's radius in meters (S2's `S2Earth::RadiusMeters`).
pub(crate) const EARTH_RADIUS: f64 = 6_371_010.0;

fn v(p: &Point) -> Vector {
    p.0
}

/// The angle between two unit vectors, in radians.
pub(crate) fn angle(a: &Point, b: &Point) -> f64 {
    let c = v(a).cross(&v(b));
    c.norm().atan2(v(a).dot(&v(b)))
}

/// The distance in meters between two coordinates.
pub(crate) fn distance(a: Ll, b: Ll) -> f64 {
    angle(&point(a), &point(b)) * EARTH_RADIUS
}

/// The point of the arc `a`-`b` closest to `x`.
pub(crate) fn closest_on_edge(x: &Point, a: &Point, b: &Point) -> Point {
    let n = v(a).cross(&v(b));
    let nn = n.norm2();
    if nn < 1e-300 {
        return *a;
    }
    let p = v(x) - n * (v(x).dot(&n) / nn);
    if p.norm2() > 1e-300 {
        let p = p.normalize();
        if v(a).cross(&p).dot(&n) >= 0.0 && p.cross(&v(b)).dot(&n) >= 0.0 {
            return Point(p);
        }
    }
    if angle(x, a) <= angle(x, b) { *a } else { *b }
}

/// The point of a line closest to `x`, with the index of its edge.
pub(crate) fn closest_on_line(x: &Point, line: &[Ll]) -> Option<(Point, usize)> {
    let pts: Vec<Point> = line.iter().map(|l| point(*l)).collect();
    let mut best: Option<(f64, Point, usize)> = None;
    for (i, w) in pts.windows(2).enumerate() {
        let c = closest_on_edge(x, &w[0], &w[1]);
        let d = angle(x, &c);
        if best.as_ref().is_none_or(|b| d < b.0) {
            best = Some((d, c, i));
        }
    }
    best.map(|(_, p, i)| (p, i))
}

/// The length of a line in radians.
pub(crate) fn length(line: &[Ll]) -> f64 {
    line.windows(2)
        .map(|w| angle(&point(w[0]), &point(w[1])))
        .sum()
}

/// The centroid of lines: the edges' midpoints weighted by their lengths (S2's line centroid).
pub(crate) fn line_centroid(lines: &[Vec<Ll>]) -> Option<Ll> {
    let mut c = Vector::new(0.0, 0.0, 0.0);
    for l in lines {
        for w in l.windows(2) {
            let (a, b) = (point(w[0]), point(w[1]));
            let s = v(&a) + v(&b);
            if s.norm2() > 0.0 {
                c = c + s.normalize() * angle(&a, &b);
            }
        }
    }
    (c.norm2() > 0.0).then(|| coord(&Point(c.normalize())))
}

/// The point at `fraction` of a line's length.
pub(crate) fn interpolate(line: &[Ll], fraction: f64) -> Option<Ll> {
    let total = length(line);
    if total <= 0.0 || !(0.0..=1.0).contains(&fraction) {
        return None;
    }
    let mut left = total * fraction;
    for w in line.windows(2) {
        let (a, b) = (point(w[0]), point(w[1]));
        let d = angle(&a, &b);
        if left <= d && d > 0.0 {
            return Some(coord(&s2::edgeutil::interpolate(left / d, &a, &b)));
        }
        left -= d;
    }
    line.last().copied()
}

/// The fraction of a line's length at which the point of the line closest to `x` lies.
pub(crate) fn locate(line: &[Ll], x: Ll) -> Option<f64> {
    let total = length(line);
    if total <= 0.0 {
        return None;
    }
    let x = point(x);
    let (c, i) = closest_on_line(&x, line)?;
    let before: f64 = line[..=i]
        .windows(2)
        .map(|w| angle(&point(w[0]), &point(w[1])))
        .sum();
    Some((before + angle(&point(line[i]), &c)) / total)
}

/// The initial bearing from `a` to `b`, in radians clockwise from north in [0, 2π).
pub(crate) fn azimuth(a: Ll, b: Ll) -> Option<f64> {
    if a == b {
        return None;
    }
    let (l1, p1, l2, p2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let y = (l2 - l1).sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * (l2 - l1).cos();
    Some(y.atan2(x).rem_euclid(2.0 * PI))
}

/// The signed area (steradians) of a closed ring, positive when counterclockwise.
fn signed_ring_area(ring: &[Ll]) -> f64 {
    let pts: Vec<Vector> = ring[..ring.len().saturating_sub(1)]
        .iter()
        .map(|l| v(&point(*l)))
        .collect();
    let mut s = 0.0;
    for i in 1..pts.len().saturating_sub(1) {
        let (a, b, c) = (pts[0], pts[i], pts[i + 1]);
        let num = a.dot(&b.cross(&c));
        let den = 1.0 + a.dot(&b) + b.dot(&c) + c.dot(&a);
        s += 2.0 * num.atan2(den);
    }
    s
}

/// The area (steradians) a ring encloses: the smaller of the two regions it bounds.
fn ring_area(ring: &[Ll]) -> f64 {
    let a = signed_ring_area(ring).abs();
    if a > 2.0 * PI { 4.0 * PI - a } else { a }
}

/// The area of polygons in square meters (holes subtracted).
pub(crate) fn area(polys: &[Rings]) -> f64 {
    polys
        .iter()
        .map(|rs| {
            let outer = rs.first().map_or(0.0, |r| ring_area(r));
            let holes: f64 = rs.iter().skip(1).map(|r| ring_area(r)).sum();
            (outer - holes).max(0.0)
        })
        .sum::<f64>()
        * EARTH_RADIUS
        * EARTH_RADIUS
}

/// The perimeter of polygons in meters (the holes' boundaries included).
pub(crate) fn perimeter(polys: &[Rings]) -> f64 {
    polys.iter().flatten().map(|r| length(r)).sum::<f64>() * EARTH_RADIUS
}

/// The winding angle of a closed ring around `x` (±2π inside, 0 outside).
fn winding(x: &Point, ring: &[Ll]) -> f64 {
    let xv = v(x);
    let mut sum = 0.0;
    for w in ring.windows(2) {
        let ta = xv.cross(&v(&point(w[0])));
        let tb = xv.cross(&v(&point(w[1])));
        sum += xv.dot(&ta.cross(&tb)).atan2(ta.dot(&tb));
    }
    sum
}

/// Whether a point is on a ring's boundary (one of its vertices or on an edge).
fn on_ring(x: &Point, ring: &[Ll]) -> bool {
    ring.windows(2).any(|w| {
        let c = closest_on_edge(x, &point(w[0]), &point(w[1]));
        angle(x, &c) < 1e-15
    })
}

/// Whether the smaller region a ring bounds contains `x` (its boundary included).
fn ring_contains(x: &Point, ring: &[Ll]) -> bool {
    if on_ring(x, ring) {
        return true;
    }
    let inside = winding(x, ring).abs() > PI;
    // The winding angle counts the region left of the ring; prefer the smaller region.
    if ring_area(ring) < 2.0 * PI && signed_ring_area(ring).abs() > 2.0 * PI {
        !inside
    } else {
        inside
    }
}

/// Whether polygons contain a point.
pub(crate) fn polygons_contain(polys: &[Rings], x: Ll) -> bool {
    let x = point(x);
    polys.iter().any(|rs| {
        rs.first().is_some_and(|outer| ring_contains(&x, outer))
            && !rs
                .iter()
                .skip(1)
                .any(|h| ring_contains(&x, h) && !on_ring(&x, h))
    })
}

/// The distance in meters from a point to the nearest point of polygons (0 inside).
pub(crate) fn distance_to_polygons(polys: &[Rings], x: Ll) -> f64 {
    if polygons_contain(polys, x) {
        return 0.0;
    }
    let p = point(x);
    polys
        .iter()
        .flatten()
        .filter_map(|r| closest_on_line(&p, r))
        .map(|(c, _)| angle(&p, &c) * EARTH_RADIUS)
        .fold(f64::INFINITY, f64::min)
}

/// How two edges cross: `Some(point)` when they cross at one interior point.
pub(crate) fn edge_intersection(a: &Point, b: &Point, c: &Point, d: &Point) -> Option<Point> {
    (crossing_sign(a, b, c, d) == Crossing::Cross).then(|| get_intersection(a, b, c, d))
}

/// Whether two edges share a point (crossing, or touching at a vertex or along an edge).
pub(crate) fn edges_touch(a: &Point, b: &Point, c: &Point, d: &Point) -> bool {
    match crossing_sign(a, b, c, d) {
        Crossing::Cross => true,
        Crossing::DoNotCross => false,
        Crossing::MaybeCross => {
            on_edge(a, c, d) || on_edge(b, c, d) || on_edge(c, a, b) || on_edge(d, a, b)
        }
    }
}

/// Whether `x` is on the arc `a`-`b`.
pub(crate) fn on_edge(x: &Point, a: &Point, b: &Point) -> bool {
    angle(x, &closest_on_edge(x, a, b)) < 1e-15
}

/// Inserts points on the planar segments of a line (in longitude and latitude) until each
/// geodesic edge is within `tolerance` meters of the planar segment it replaces.
pub(crate) fn densify(line: &[Ll], tolerance: f64) -> Vec<Ll> {
    fn split(a: Ll, b: Ll, tolerance: f64, depth: u32, out: &mut Vec<Ll>) {
        let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let pm = point(mid);
        let c = closest_on_edge(&pm, &point(a), &point(b));
        if depth < 20 && angle(&pm, &c) * EARTH_RADIUS > tolerance {
            split(a, mid, tolerance, depth + 1, out);
            out.push(mid);
            split(mid, b, tolerance, depth + 1, out);
        }
    }
    let mut out = Vec::with_capacity(line.len());
    for (i, w) in line.windows(2).enumerate() {
        if i == 0 {
            out.push(w[0]);
        }
        split(w[0], w[1], tolerance, 0, &mut out);
        out.push(w[1]);
    }
    out
}

/// Douglas-Peucker simplification of a line with geodesic distances: keeps the ends and
/// every vertex farther than `tolerance` meters from the simplified line.
pub(crate) fn simplify(line: &[Ll], tolerance: f64) -> Vec<Ll> {
    fn rec(pts: &[Ll], lo: usize, hi: usize, tol: f64, keep: &mut [bool]) {
        if hi <= lo + 1 {
            return;
        }
        let (a, b) = (point(pts[lo]), point(pts[hi]));
        let mut best = (0.0, lo);
        for (i, p) in pts.iter().enumerate().take(hi).skip(lo + 1) {
            let x = point(*p);
            let d = angle(&x, &closest_on_edge(&x, &a, &b)) * EARTH_RADIUS;
            if d > best.0 {
                best = (d, i);
            }
        }
        if best.0 > tol {
            keep[best.1] = true;
            rec(pts, lo, best.1, tol, keep);
            rec(pts, best.1, hi, tol, keep);
        }
    }
    if line.len() < 3 {
        return line.to_vec();
    }
    let mut keep = vec![false; line.len()];
    keep[0] = true;
    keep[line.len() - 1] = true;
    rec(line, 0, line.len() - 1, tolerance, &mut keep);
    line.iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

/// Simplifies a closed ring: the farthest vertex from the first splits it into two lines.
pub(crate) fn simplify_ring(ring: &[Ll], tolerance: f64) -> Vec<Ll> {
    if ring.len() < 4 {
        return ring.to_vec();
    }
    let first = point(ring[0]);
    let far = (1..ring.len() - 1)
        .max_by(|&i, &j| angle(&first, &point(ring[i])).total_cmp(&angle(&first, &point(ring[j]))))
        .unwrap_or(1);
    let mut out = simplify(&ring[..=far], tolerance);
    out.pop();
    out.extend(simplify(&ring[far..], tolerance));
    out
}

/// The centroid of polygons: the area-weighted true centroids of their triangles (S2's).
pub(crate) fn polygon_centroid(polys: &[Rings]) -> Option<Ll> {
    let mut c = Vector::new(0.0, 0.0, 0.0);
    for (k, ring) in polys.iter().flat_map(|rs| rs.iter().enumerate()) {
        let pts: Vec<Point> = ring[..ring.len().saturating_sub(1)]
            .iter()
            .map(|l| point(*l))
            .collect();
        let mut rc = Vector::new(0.0, 0.0, 0.0);
        for i in 1..pts.len().saturating_sub(1) {
            rc = rc + s2::point::true_centroid(&pts[0], &pts[i], &pts[i + 1]).0;
        }
        // Holes (and rings wound clockwise) subtract: orient each ring by its role.
        let sign = if (signed_ring_area(ring) >= 0.0) == (k == 0) {
            1.0
        } else {
            -1.0
        };
        c = c + rc * sign;
    }
    (c.norm2() > 0.0).then(|| coord(&Point(c.normalize())))
}
