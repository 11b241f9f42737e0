//! Grid cells: geohashes (the `geohash` crate), S2 cells (the `s2` crate) and H3 cells (the
//! `h3o` crate), as Kusto names and shapes them.

use std::str::FromStr;

use h3o::{CellIndex, Resolution};
use s2::cell::Cell;
use s2::cellid::CellID;
use s2::latlng::LatLng;

use super::shape::{Ll, Rings, Shape, coord, point, valid_ll};
use super::sphere;

/// The geohash of a coordinate with `accuracy` characters (1 to 12).
pub(crate) fn geohash(ll: Ll, accuracy: i64) -> Option<String> {
    if !valid_ll(ll.0, ll.1) || !(1..=12).contains(&accuracy) {
        return None;
    }
    let n = usize::try_from(accuracy).ok()?;
    geohash::encode(geo::Coord { x: ll.0, y: ll.1 }, n).ok()
}

fn geohash_rect(hash: &str) -> Option<geo::Rect<f64>> {
    if hash.is_empty() || hash.len() > 12 {
        return None;
    }
    geohash::decode_bbox(hash).ok()
}

/// The center of a geohash's rectangle.
pub(crate) fn geohash_center(hash: &str) -> Option<Ll> {
    let r = geohash_rect(hash)?;
    let c = r.center();
    Some((c.x, c.y))
}

/// A geohash's rectangle as a polygon (counterclockwise from its south-west corner).
pub(crate) fn geohash_polygon(hash: &str) -> Option<Shape> {
    let r = geohash_rect(hash)?;
    let (lo, hi) = (r.min(), r.max());
    Some(Shape::Polygon(vec![vec![
        (lo.x, lo.y),
        (hi.x, lo.y),
        (hi.x, hi.y),
        (lo.x, hi.y),
        (lo.x, lo.y),
    ]]))
}

/// A geohash's eight neighbors, in Kusto's order (N, NE, E, SE, S, SW, W, NW).
pub(crate) fn geohash_neighbors(hash: &str) -> Option<Vec<String>> {
    geohash_rect(hash)?;
    let n = geohash::neighbors(hash).ok()?;
    Some(vec![n.n, n.ne, n.e, n.se, n.s, n.sw, n.w, n.nw])
}

/// The S2 cell of a coordinate at `level` (0 to 30).
pub(crate) fn s2cell(ll: Ll, level: i64) -> Option<String> {
    if !valid_ll(ll.0, ll.1) || !(0..=30).contains(&level) {
        return None;
    }
    let id = CellID::from(LatLng::from_degrees(ll.1, ll.0)).parent(u64::try_from(level).ok()?);
    Some(id.to_token())
}

/// A valid S2 cell token.
fn s2_token(token: &str) -> Option<CellID> {
    if token.is_empty() || token.len() > 16 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = CellID::from_token(token);
    id.is_valid().then_some(id)
}

/// The center of an S2 cell.
pub(crate) fn s2cell_center(token: &str) -> Option<Ll> {
    let id = s2_token(token)?;
    Some(coord(&Cell::from(id).center()))
}

/// An S2 cell as a polygon (its four vertices counterclockwise).
pub(crate) fn s2cell_polygon(token: &str) -> Option<Shape> {
    let id = s2_token(token)?;
    let cell = Cell::from(id);
    let mut ring: Vec<Ll> = cell.vertices().iter().map(coord).collect();
    ring.push(ring[0]);
    Some(Shape::Polygon(vec![ring]))
}

/// The S2 cells that touch an S2 cell (edge and corner neighbors).
pub(crate) fn s2cell_neighbors(token: &str) -> Option<Vec<String>> {
    let id = s2_token(token)?;
    let mut out: Vec<String> = Vec::new();
    for n in id.all_neighbors(id.level()) {
        let t = n.to_token();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Some(out)
}

/// The level of an S2 cell.
pub(crate) fn s2cell_level(token: &str) -> Option<i64> {
    s2_token(token).map(|id| id.level() as i64)
}

/// Whether polygons (geodesic edges) intersect an S2 cell.
fn polygons_intersect_cell(polys: &[Rings], cell: &Cell) -> bool {
    let verts = cell.vertices();
    if verts
        .iter()
        .any(|v| sphere::polygons_contain(polys, coord(v)))
    {
        return true;
    }
    for ring in polys.iter().flatten() {
        if ring.iter().any(|p| cell.contains_point(&point(*p))) {
            return true;
        }
        for w in ring.windows(2) {
            let (a, b) = (point(w[0]), point(w[1]));
            for k in 0..4 {
                if sphere::edges_touch(&a, &b, &verts[k], &verts[(k + 1) % 4]) {
                    return true;
                }
            }
        }
    }
    false
}

/// The S2 cells of `level` that cover polygons, sorted by cell id; `None` past `limit` cells.
pub(crate) fn polygon_to_s2cells(polys: &[Rings], level: u64, limit: usize) -> Option<Vec<String>> {
    // The expected count, from the area: refuse early rather than enumerate millions of cells.
    let cell_area = 4.0 * std::f64::consts::PI / (6.0 * 4f64.powi(level as i32));
    let area = sphere::area(polys) / (sphere::EARTH_RADIUS * sphere::EARTH_RADIUS);
    if area / cell_area > limit as f64 {
        return None;
    }
    let mut out = Vec::new();
    let mut stack: Vec<CellID> = (0..6).map(CellID::from_face).collect();
    while let Some(id) = stack.pop() {
        let cell = Cell::from(id);
        if !polygons_intersect_cell(polys, &cell) {
            continue;
        }
        if id.level() == level {
            out.push(id);
            if out.len() > limit {
                return None;
            }
        } else {
            stack.extend(id.children());
        }
    }
    out.sort();
    Some(out.iter().map(CellID::to_token).collect())
}

fn h3_res(r: i64) -> Option<Resolution> {
    Resolution::try_from(u8::try_from(r).ok()?).ok()
}

fn h3_cell(text: &str) -> Option<CellIndex> {
    CellIndex::from_str(text.trim()).ok()
}

/// The H3 cell of a coordinate at `resolution` (0 to 15).
pub(crate) fn h3cell(ll: Ll, resolution: i64) -> Option<String> {
    if !valid_ll(ll.0, ll.1) {
        return None;
    }
    let res = h3_res(resolution)?;
    let p = h3o::LatLng::new(ll.1, ll.0).ok()?;
    Some(p.to_cell(res).to_string())
}

/// The parent of an H3 cell at `resolution` (default: one coarser).
pub(crate) fn h3cell_parent(text: &str, resolution: Option<i64>) -> Option<String> {
    let c = h3_cell(text)?;
    let r = match resolution {
        Some(r) => h3_res(r)?,
        None => h3_res(i64::from(u8::from(c.resolution())) - 1)?,
    };
    if r >= c.resolution() {
        return None;
    }
    c.parent(r).map(|p| p.to_string())
}

/// The children of an H3 cell at `resolution` (default: one finer).
pub(crate) fn h3cell_children(text: &str, resolution: Option<i64>) -> Option<Vec<String>> {
    let c = h3_cell(text)?;
    let r = match resolution {
        Some(r) => h3_res(r)?,
        None => h3_res(i64::from(u8::from(c.resolution())) + 1)?,
    };
    if r <= c.resolution() || c.children_count(r) > 65_536 {
        return None;
    }
    Some(c.children(r).map(|x| x.to_string()).collect())
}

/// The resolution of an H3 cell.
pub(crate) fn h3cell_level(text: &str) -> Option<i64> {
    h3_cell(text).map(|c| i64::from(u8::from(c.resolution())))
}

/// The center of an H3 cell.
pub(crate) fn h3cell_center(text: &str) -> Option<Ll> {
    let ll = h3o::LatLng::from(h3_cell(text)?);
    Some((ll.lng(), ll.lat()))
}

/// An H3 cell as a polygon (its boundary counterclockwise, closed).
pub(crate) fn h3cell_polygon(text: &str) -> Option<Shape> {
    let b = h3_cell(text)?.boundary();
    let mut ring: Vec<Ll> = b.iter().map(|ll| (ll.lng(), ll.lat())).collect();
    let first = *ring.first()?;
    ring.push(first);
    Some(Shape::Polygon(vec![ring]))
}

/// The H3 cells at distance 1 of an H3 cell.
pub(crate) fn h3cell_neighbors(text: &str) -> Option<Vec<String>> {
    let c = h3_cell(text)?;
    let ring: Vec<Option<CellIndex>> = c.grid_ring_fast(1).collect();
    let cells: Option<Vec<CellIndex>> = ring.into_iter().collect();
    let cells = cells.unwrap_or_else(|| {
        c.grid_disk::<Vec<_>>(1)
            .into_iter()
            .filter(|x| *x != c)
            .collect()
    });
    Some(cells.iter().map(ToString::to_string).collect())
}

/// The H3 cells of `resolution` whose area intersects polygons.
pub(crate) fn polygon_to_h3cells(polys: &[Rings], resolution: i64) -> Option<Vec<String>> {
    let res = h3_res(resolution)?;
    let mut tiler = h3o::geom::TilerBuilder::new(res)
        .containment_mode(h3o::geom::ContainmentMode::Covers)
        .build();
    for rs in polys {
        tiler.add(super::shape::to_geo_polygon(rs)).ok()?;
    }
    if tiler.coverage_size_hint() > 1_000_000 {
        return None;
    }
    let cells: Vec<String> = tiler.into_coverage().map(|c| c.to_string()).collect();
    (cells.len() <= 65_536).then_some(cells)
}
