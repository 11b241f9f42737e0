//! Operations between shapes: intersections of lines and polygons on the sphere (geodesic
//! edges, S2's crossing and intersection predicates), the union of lines, and the boolean
//! operations of polygons (the `geo` crate's, in the plane of longitude and latitude).

use geo::BooleanOps;
use s2::point::Point;

use super::shape::{self, Ll, Rings, Shape, coord, point};
use super::sphere;

/// A shape of the pieces found: nothing is an empty collection, one piece itself, several of
/// one kind a multi-shape, several kinds a collection.
fn assemble(points: Vec<Ll>, lines: Vec<Vec<Ll>>) -> Shape {
    let mut parts = Vec::new();
    match points.len() {
        0 => {}
        1 => parts.push(Shape::Point(points[0])),
        _ => parts.push(Shape::MultiPoint(points)),
    }
    match lines.len() {
        0 => {}
        1 => parts.push(Shape::Line(lines.into_iter().next().unwrap_or_default())),
        _ => parts.push(Shape::MultiLine(lines)),
    }
    if parts.len() == 1 {
        parts.pop().unwrap_or(Shape::Collection(Vec::new()))
    } else {
        Shape::Collection(parts)
    }
}

fn same_edge(a: (Ll, Ll), b: (Ll, Ll)) -> bool {
    a == b || (a.0 == b.1 && a.1 == b.0)
}

fn edges(line: &[Ll]) -> impl Iterator<Item = (Ll, Ll)> + '_ {
    line.windows(2).map(|w| (w[0], w[1]))
}

/// Whether two lines share a point.
pub(crate) fn lines_intersect(l1: &[Ll], l2: &[Ll]) -> bool {
    edges(l1).any(|(a, b)| {
        let (pa, pb) = (point(a), point(b));
        edges(l2).any(|(c, d)| sphere::edges_touch(&pa, &pb, &point(c), &point(d)))
    })
}

/// The intersection of two lines: the points where they cross or touch, and the edges they
/// share.
pub(crate) fn intersection_2lines(l1: &[Ll], l2: &[Ll]) -> Shape {
    let mut points: Vec<Ll> = Vec::new();
    let mut shared: Vec<Vec<Ll>> = Vec::new();
    let push = |p: Ll, points: &mut Vec<Ll>| {
        if !points.contains(&p) {
            points.push(p);
        }
    };
    for e1 in edges(l1) {
        if edges(l2).any(|e2| same_edge(e1, e2)) {
            match shared.last_mut() {
                Some(l) if l.last() == Some(&e1.0) => l.push(e1.1),
                _ => shared.push(vec![e1.0, e1.1]),
            }
            continue;
        }
        let (a, b) = (point(e1.0), point(e1.1));
        for (c, d) in edges(l2) {
            let (pc, pd) = (point(c), point(d));
            if let Some(x) = sphere::edge_intersection(&a, &b, &pc, &pd) {
                push(coord(&x), &mut points);
            } else {
                for (q, pq) in [(e1.0, &a), (e1.1, &b)] {
                    if sphere::on_edge(pq, &pc, &pd) {
                        push(q, &mut points);
                    }
                }
                for (q, pq) in [(c, &pc), (d, &pd)] {
                    if sphere::on_edge(pq, &a, &b) {
                        push(q, &mut points);
                    }
                }
            }
        }
    }
    // Points on a shared edge are part of it.
    points.retain(|p| {
        !shared
            .iter()
            .any(|l| edges(l).any(|(a, b)| sphere::on_edge(&point(*p), &point(a), &point(b))))
    });
    assemble(points, shared)
}

/// The crossings of the arc `a`-`b` with the boundaries of polygons, as fractions of the arc.
fn crossings(a: &Point, b: &Point, polys: &[Rings]) -> Vec<(f64, Point)> {
    let total = sphere::angle(a, b);
    let mut out = Vec::new();
    for (c, d) in polys.iter().flatten().flat_map(|r| edges(r)) {
        if let Some(x) = sphere::edge_intersection(a, b, &point(c), &point(d)) {
            let t = if total > 0.0 {
                sphere::angle(a, &x) / total
            } else {
                0.0
            };
            out.push((t, x));
        }
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

/// The parts of lines inside polygons.
pub(crate) fn clip_lines(lines: &[Vec<Ll>], polys: &[Rings]) -> Vec<Vec<Ll>> {
    let mut out: Vec<Vec<Ll>> = Vec::new();
    for line in lines {
        let mut current: Option<Vec<Ll>> = None;
        for (a, b) in edges(line) {
            let (pa, pb) = (point(a), point(b));
            let mut cuts: Vec<(Ll, Point)> = vec![(a, pa)];
            cuts.extend(
                crossings(&pa, &pb, polys)
                    .into_iter()
                    .map(|(_, x)| (coord(&x), x)),
            );
            cuts.push((b, pb));
            for w in cuts.windows(2) {
                let ((s, ps), (e, pe)) = (w[0], w[1]);
                let mid = Point((ps.0 + pe.0).normalize());
                let inside = sphere::polygons_contain(polys, coord(&mid));
                match (&mut current, inside) {
                    (Some(l), true) => l.push(e),
                    (None, true) => current = Some(vec![s, e]),
                    (Some(_), false) => out.extend(current.take()),
                    (None, false) => {}
                }
            }
        }
        out.extend(current.take());
    }
    out
}

/// The part of a line inside polygons.
pub(crate) fn intersection_line_polygon(lines: &[Vec<Ll>], polys: &[Rings]) -> Shape {
    assemble(Vec::new(), clip_lines(lines, polys))
}

/// The union of lines: their distinct edges chained into as few lines as they form.
pub(crate) fn union_lines(lines: &[Vec<Ll>]) -> Shape {
    let mut distinct: Vec<(Ll, Ll)> = Vec::new();
    for e in lines.iter().flat_map(|l| edges(l)) {
        if e.0 != e.1 && !distinct.iter().any(|d| same_edge(*d, e)) {
            distinct.push(e);
        }
    }
    let mut chains: Vec<Vec<Ll>> = Vec::new();
    let mut used = vec![false; distinct.len()];
    while let Some(start) = used.iter().position(|u| !u) {
        used[start] = true;
        let mut chain = vec![distinct[start].0, distinct[start].1];
        loop {
            let end = chain[chain.len() - 1];
            let head = chain[0];
            if let Some(i) = (0..distinct.len()).find(|&i| !used[i] && distinct[i].0 == end) {
                used[i] = true;
                chain.push(distinct[i].1);
            } else if let Some(i) = (0..distinct.len()).find(|&i| !used[i] && distinct[i].1 == head)
            {
                used[i] = true;
                chain.insert(0, distinct[i].0);
            } else {
                break;
            }
        }
        chains.push(chain);
    }
    assemble(Vec::new(), chains)
}

fn multi(polys: &[Rings]) -> geo::MultiPolygon<f64> {
    geo::MultiPolygon::new(polys.iter().map(shape::to_geo_polygon).collect())
}

fn from_multi(m: &geo::MultiPolygon<f64>) -> Shape {
    let ps: Vec<Rings> = m
        .iter()
        .filter_map(
            |p| match shape::from_geo(&geo::Geometry::Polygon(p.clone())) {
                Some(Shape::Polygon(r)) => Some(r),
                _ => None,
            },
        )
        .collect();
    match ps.len() {
        0 => Shape::Collection(Vec::new()),
        1 => Shape::Polygon(ps.into_iter().next().unwrap_or_default()),
        _ => Shape::MultiPolygon(ps),
    }
}

/// The union of polygons (planar, in longitude and latitude).
pub(crate) fn union_polygons(polys: &[Rings]) -> Shape {
    let mut acc = geo::MultiPolygon::new(Vec::new());
    for p in polys {
        acc = acc.union(&multi(std::slice::from_ref(p)));
    }
    from_multi(&acc)
}

/// The intersection of two sets of polygons (planar, in longitude and latitude).
pub(crate) fn intersection_polygons(a: &[Rings], b: &[Rings]) -> Shape {
    from_multi(&multi(a).intersection(&multi(b)))
}

/// Whether two sets of polygons share a point (on the sphere).
pub(crate) fn polygons_intersect(a: &[Rings], b: &[Rings]) -> bool {
    let vertex_inside = |x: &[Rings], y: &[Rings]| {
        x.iter()
            .flatten()
            .flatten()
            .any(|p| sphere::polygons_contain(y, *p))
    };
    if vertex_inside(a, b) || vertex_inside(b, a) {
        return true;
    }
    a.iter()
        .flatten()
        .any(|r1| b.iter().flatten().any(|r2| lines_intersect(r1, r2)))
}
