//! Geospatial shapes as Kusto takes and gives them: GeoJSON in dynamic values (and WKT text
//! for `geo_from_wkt`), validated as Kusto validates them (longitude in [-180, 180], latitude in
//! [-90, 90], lines of two points or more, closed rings of three distinct vertices or more).

use s2::latlng::LatLng;
use s2::point::Point;
use serde_json::{Map, Value, json};

use crate::udf::value::{Val, real_json};

/// A coordinate: longitude and latitude in degrees.
pub(crate) type Ll = (f64, f64);

/// A polygon: its outer ring, then its holes; each ring closed (first vertex repeated last).
pub(crate) type Rings = Vec<Vec<Ll>>;

/// A GeoJSON geometry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Point(Ll),
    Line(Vec<Ll>),
    Polygon(Rings),
    MultiPoint(Vec<Ll>),
    MultiLine(Vec<Vec<Ll>>),
    MultiPolygon(Vec<Rings>),
    Collection(Vec<Shape>),
}

/// Whether a longitude and latitude are valid.
pub(crate) fn valid_ll(lng: f64, lat: f64) -> bool {
    lng.is_finite()
        && lat.is_finite()
        && (-180.0..=180.0).contains(&lng)
        && (-90.0..=90.0).contains(&lat)
}

/// The point on the unit sphere of a coordinate.
pub(crate) fn point(ll: Ll) -> Point {
    Point::from(LatLng::from_degrees(ll.1, ll.0))
}

/// The coordinate of a point on the sphere.
pub(crate) fn coord(p: &Point) -> Ll {
    let ll = LatLng::from(*p);
    (ll.lng.deg(), ll.lat.deg())
}

fn pos(v: &Value) -> Option<Ll> {
    let a = v.as_array()?;
    if a.len() < 2 {
        return None;
    }
    let (lng, lat) = (a[0].as_f64()?, a[1].as_f64()?);
    valid_ll(lng, lat).then_some((lng, lat))
}

fn positions(v: &Value) -> Option<Vec<Ll>> {
    v.as_array()?.iter().map(pos).collect()
}

fn line(v: &Value) -> Option<Vec<Ll>> {
    let l = positions(v)?;
    (l.len() >= 2).then_some(l)
}

/// A closed ring with at least three distinct vertices.
fn ring(v: &Value) -> Option<Vec<Ll>> {
    let r = positions(v)?;
    if r.len() < 4 || r.first() != r.last() {
        return None;
    }
    let mut distinct: Vec<Ll> = Vec::new();
    for p in &r[..r.len() - 1] {
        if !distinct.contains(p) {
            distinct.push(*p);
        }
    }
    (distinct.len() >= 3).then_some(r)
}

fn rings(v: &Value) -> Option<Rings> {
    let rs: Rings = v.as_array()?.iter().map(ring).collect::<Option<_>>()?;
    (!rs.is_empty()).then_some(rs)
}

/// Reads a GeoJSON geometry (a dynamic value, or its JSON text); `None` when it is invalid.
pub(crate) fn parse(v: &Val) -> Option<Shape> {
    let json = match v {
        Val::Dynamic(j) => j.clone(),
        Val::Str(s) => serde_json::from_str(s).ok()?,
        _ => return None,
    };
    parse_json(&json)
}

/// Reads a GeoJSON geometry.
pub(crate) fn parse_json(j: &Value) -> Option<Shape> {
    let ty = j.get("type")?.as_str()?;
    if ty == "GeometryCollection" {
        let gs = j.get("geometries")?.as_array()?;
        return Some(Shape::Collection(
            gs.iter().map(parse_json).collect::<Option<_>>()?,
        ));
    }
    let c = j.get("coordinates")?;
    Some(match ty {
        "Point" => Shape::Point(pos(c)?),
        "LineString" => Shape::Line(line(c)?),
        "Polygon" => Shape::Polygon(rings(c)?),
        "MultiPoint" => {
            let ps = positions(c)?;
            if ps.is_empty() {
                return None;
            }
            Shape::MultiPoint(ps)
        }
        "MultiLineString" => {
            let ls: Vec<Vec<Ll>> = c.as_array()?.iter().map(line).collect::<Option<_>>()?;
            if ls.is_empty() {
                return None;
            }
            Shape::MultiLine(ls)
        }
        "MultiPolygon" => {
            let ps: Vec<Rings> = c.as_array()?.iter().map(rings).collect::<Option<_>>()?;
            if ps.is_empty() {
                return None;
            }
            Shape::MultiPolygon(ps)
        }
        _ => return None,
    })
}

/// The polygons of a Polygon or MultiPolygon.
pub(crate) fn polygons(s: &Shape) -> Option<Vec<Rings>> {
    match s {
        Shape::Polygon(r) => Some(vec![r.clone()]),
        Shape::MultiPolygon(ps) => Some(ps.clone()),
        _ => None,
    }
}

/// The lines of a LineString or MultiLineString.
pub(crate) fn lines(s: &Shape) -> Option<Vec<Vec<Ll>>> {
    match s {
        Shape::Line(l) => Some(vec![l.clone()]),
        Shape::MultiLine(ls) => Some(ls.clone()),
        _ => None,
    }
}

fn pos_json(p: Ll) -> Value {
    Value::Array(vec![real_json(p.0), real_json(p.1)])
}

fn list_json(ps: &[Ll]) -> Value {
    Value::Array(ps.iter().map(|p| pos_json(*p)).collect())
}

fn rings_json(rs: &Rings) -> Value {
    Value::Array(rs.iter().map(|r| list_json(r)).collect())
}

fn geometry(ty: &str, coordinates: Value) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(ty.into()));
    m.insert("coordinates".into(), coordinates);
    Value::Object(m)
}

/// The GeoJSON of a shape.
pub(crate) fn to_json(s: &Shape) -> Value {
    match s {
        Shape::Point(p) => geometry("Point", pos_json(*p)),
        Shape::Line(l) => geometry("LineString", list_json(l)),
        Shape::Polygon(r) => geometry("Polygon", rings_json(r)),
        Shape::MultiPoint(ps) => geometry("MultiPoint", list_json(ps)),
        Shape::MultiLine(ls) => geometry(
            "MultiLineString",
            Value::Array(ls.iter().map(|l| list_json(l)).collect()),
        ),
        Shape::MultiPolygon(ps) => geometry(
            "MultiPolygon",
            Value::Array(ps.iter().map(rings_json).collect()),
        ),
        Shape::Collection(gs) => {
            json!({"type": "GeometryCollection", "geometries": gs.iter().map(to_json).collect::<Vec<_>>()})
        }
    }
}

/// A shape as a dynamic value.
pub(crate) fn val(s: &Shape) -> Val {
    Val::Dynamic(to_json(s))
}

/// Reads WKT text (`POINT (1 2)`, ..., `GEOMETRYCOLLECTION (...)`); `None` when it is invalid.
pub(crate) fn from_wkt(text: &str) -> Option<Shape> {
    use std::str::FromStr;
    let w: wkt::Wkt<f64> = wkt::Wkt::from_str(text.trim()).ok()?;
    let g: geo::Geometry<f64> = geo::Geometry::try_from(w).ok()?;
    let s = from_geo(&g)?;
    // Validate as GeoJSON input is validated.
    parse_json(&to_json(&s))
}

fn ll_of(c: geo::Coord<f64>) -> Ll {
    (c.x, c.y)
}

fn ring_of(l: &geo::LineString<f64>) -> Vec<Ll> {
    l.coords().map(|c| ll_of(*c)).collect()
}

fn rings_of(p: &geo::Polygon<f64>) -> Rings {
    std::iter::once(ring_of(p.exterior()))
        .chain(p.interiors().iter().map(ring_of))
        .collect()
}

/// A shape from a `geo` geometry.
pub(crate) fn from_geo(g: &geo::Geometry<f64>) -> Option<Shape> {
    use geo::Geometry as G;
    Some(match g {
        G::Point(p) => Shape::Point(ll_of(p.0)),
        G::LineString(l) => Shape::Line(ring_of(l)),
        G::Polygon(p) => Shape::Polygon(rings_of(p)),
        G::MultiPoint(m) => Shape::MultiPoint(m.iter().map(|p| ll_of(p.0)).collect()),
        G::MultiLineString(m) => Shape::MultiLine(m.iter().map(ring_of).collect()),
        G::MultiPolygon(m) => Shape::MultiPolygon(m.iter().map(rings_of).collect()),
        G::GeometryCollection(c) => {
            Shape::Collection(c.iter().map(from_geo).collect::<Option<_>>()?)
        }
        _ => return None,
    })
}

/// A `geo` polygon of rings.
pub(crate) fn to_geo_polygon(rs: &Rings) -> geo::Polygon<f64> {
    let ls = |r: &Vec<Ll>| geo::LineString::from(r.clone());
    let mut it = rs.iter();
    let ext = it
        .next()
        .map(ls)
        .unwrap_or_else(|| geo::LineString::new(Vec::new()));
    geo::Polygon::new(ext, it.map(ls).collect())
}
