//! Unit conversion: `convert_angle`, `convert_energy`, `convert_force`, `convert_length`,
//! `convert_mass`, `convert_speed`, `convert_temperature`, `convert_volume`.
//!
//! Each quantity has a table of its units (the names of the KQL reference, matched without
//! regard to case) with the value of one unit in the quantity's base unit. A unit that is not
//! in the table gives null.

use super::{FnCall, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

const INCH: f64 = 0.0254;
const FOOT: f64 = 0.3048;
const US_SURVEY_FOOT: f64 = 1200.0 / 3937.0;
const YARD: f64 = 0.9144;
const MILE: f64 = 1609.344;
const BTU: f64 = 1055.05585262;
const US_GALLON: f64 = 0.003785411784;
const IMPERIAL_GALLON: f64 = 0.00454609;
const CUBIC_FOOT: f64 = 0.028316846592;
const POUND: f64 = 0.45359237;
const POUND_FORCE: f64 = 4.4482216152605;
const DEGREE_PER_RADIAN: f64 = 180.0 / std::f64::consts::PI;

/// Angles, in degrees (`Tilt`, the sine of the angle, is converted apart).
const ANGLE: &[(&str, f64)] = &[
    ("Arcminute", 1.0 / 60.0),
    ("Arcsecond", 1.0 / 3600.0),
    ("Centiradian", 1e-2 * DEGREE_PER_RADIAN),
    ("Deciradian", 1e-1 * DEGREE_PER_RADIAN),
    ("Degree", 1.0),
    ("Gradian", 0.9),
    ("Microdegree", 1e-6),
    ("Microradian", 1e-6 * DEGREE_PER_RADIAN),
    ("Millidegree", 1e-3),
    ("Milliradian", 1e-3 * DEGREE_PER_RADIAN),
    ("Nanodegree", 1e-9),
    ("Nanoradian", 1e-9 * DEGREE_PER_RADIAN),
    ("NatoMil", 360.0 / 6400.0),
    ("Radian", DEGREE_PER_RADIAN),
    ("Revolution", 360.0),
];

/// Energy, in joules.
const ENERGY: &[(&str, f64)] = &[
    ("BritishThermalUnit", BTU),
    ("Calorie", 4.184),
    ("DecathermEc", 1.05505585262e9),
    ("DecathermImperial", 1.05505585257348e9),
    ("DecathermUs", 1.054804e9),
    ("ElectronVolt", 1.602176565e-19),
    ("Erg", 1e-7),
    ("FootPound", 1.355817948),
    ("GigabritishThermalUnit", BTU * 1e9),
    ("GigaelectronVolt", 1.602176565e-10),
    ("Gigajoule", 1e9),
    ("GigawattDay", 8.64e13),
    ("GigawattHour", 3.6e12),
    ("HorsepowerHour", 2.6845195377e6),
    ("Joule", 1.0),
    ("KilobritishThermalUnit", BTU * 1e3),
    ("Kilocalorie", 4184.0),
    ("KiloelectronVolt", 1.602176565e-16),
    ("Kilojoule", 1e3),
    ("KilowattDay", 8.64e7),
    ("KilowattHour", 3.6e6),
    ("MegabritishThermalUnit", BTU * 1e6),
    ("Megacalorie", 4.184e6),
    ("MegaelectronVolt", 1.602176565e-13),
    ("Megajoule", 1e6),
    ("MegawattDay", 8.64e10),
    ("MegawattHour", 3.6e9),
    ("Millijoule", 1e-3),
    ("TeraelectronVolt", 1.602176565e-7),
    ("TerawattDay", 8.64e16),
    ("TerawattHour", 3.6e15),
    ("ThermEc", 1.05505585262e8),
    ("ThermImperial", 1.05505585257348e8),
    ("ThermUs", 1.054804e8),
    ("WattDay", 86400.0),
    ("WattHour", 3600.0),
];

/// Force, in newtons.
const FORCE: &[(&str, f64)] = &[
    ("Decanewton", 10.0),
    ("Dyn", 1e-5),
    ("KilogramForce", 9.80665),
    ("Kilonewton", 1e3),
    ("KiloPond", 9.80665),
    ("KilopoundForce", POUND_FORCE * 1e3),
    ("Meganewton", 1e6),
    ("Micronewton", 1e-6),
    ("Millinewton", 1e-3),
    ("Newton", 1.0),
    ("OunceForce", POUND_FORCE / 16.0),
    ("Poundal", 0.138254954376),
    ("PoundForce", POUND_FORCE),
    ("ShortTonForce", POUND_FORCE * 2000.0),
    ("TonneForce", 9806.65),
];

/// Length, in meters.
const LENGTH: &[(&str, f64)] = &[
    ("Angstrom", 1e-10),
    ("AstronomicalUnit", 1.4959787070e11),
    ("Centimeter", 1e-2),
    ("Chain", 20.1168),
    ("DataMile", 1828.8),
    ("Decameter", 10.0),
    ("Decimeter", 0.1),
    ("DtpPica", INCH / 6.0),
    ("DtpPoint", INCH / 72.0),
    ("Fathom", 1.8288),
    ("Foot", FOOT),
    ("Hand", 0.1016),
    ("Hectometer", 100.0),
    ("Inch", INCH),
    ("KilolightYear", 9.46073047258e18),
    ("Kilometer", 1e3),
    ("Kiloparsec", 3.08567758128e19),
    ("LightYear", 9.46073047258e15),
    ("MegalightYear", 9.46073047258e21),
    ("Megaparsec", 3.08567758128e22),
    ("Meter", 1.0),
    ("Microinch", INCH * 1e-6),
    ("Micrometer", 1e-6),
    ("Mil", INCH * 1e-3),
    ("Mile", MILE),
    ("Millimeter", 1e-3),
    ("Nanometer", 1e-9),
    ("NauticalMile", 1852.0),
    ("Parsec", 3.08567758128e16),
    ("PrinterPica", INCH / 6.0225),
    ("PrinterPoint", INCH / 72.27),
    ("Shackle", 27.432),
    ("SolarRadius", 6.95510000e8),
    ("Twip", INCH / 1440.0),
    ("UsSurveyFoot", US_SURVEY_FOOT),
    ("Yard", YARD),
];

/// Mass, in kilograms.
const MASS: &[(&str, f64)] = &[
    ("Centigram", 1e-5),
    ("Decagram", 1e-2),
    ("Decigram", 1e-4),
    ("EarthMass", 5.9722e24),
    ("Grain", 6.479891e-5),
    ("Gram", 1e-3),
    ("Hectogram", 0.1),
    ("Kilogram", 1.0),
    ("Kilopound", POUND * 1e3),
    ("Kilotonne", 1e6),
    ("LongHundredweight", 50.80234544),
    ("LongTon", 1016.0469088),
    ("Megapound", POUND * 1e6),
    ("Megatonne", 1e9),
    ("Microgram", 1e-9),
    ("Milligram", 1e-6),
    ("Nanogram", 1e-12),
    ("Ounce", POUND / 16.0),
    ("Pound", POUND),
    ("ShortHundredweight", POUND * 100.0),
    ("ShortTon", POUND * 2000.0),
    ("Slug", 14.593902937206364),
    ("SolarMass", 1.98947e30),
    ("Stone", POUND * 14.0),
    ("Tonne", 1e3),
];

/// Speed, in meters per second.
const SPEED: &[(&str, f64)] = &[
    ("CentimeterPerHour", 1e-2 / 3600.0),
    ("CentimeterPerMinute", 1e-2 / 60.0),
    ("CentimeterPerSecond", 1e-2),
    ("DecimeterPerMinute", 0.1 / 60.0),
    ("DecimeterPerSecond", 0.1),
    ("FootPerHour", FOOT / 3600.0),
    ("FootPerMinute", FOOT / 60.0),
    ("FootPerSecond", FOOT),
    ("InchPerHour", INCH / 3600.0),
    ("InchPerMinute", INCH / 60.0),
    ("InchPerSecond", INCH),
    ("KilometerPerHour", 1e3 / 3600.0),
    ("KilometerPerMinute", 1e3 / 60.0),
    ("KilometerPerSecond", 1e3),
    ("Knot", 1852.0 / 3600.0),
    ("MeterPerHour", 1.0 / 3600.0),
    ("MeterPerMinute", 1.0 / 60.0),
    ("MeterPerSecond", 1.0),
    ("MicrometerPerMinute", 1e-6 / 60.0),
    ("MicrometerPerSecond", 1e-6),
    ("MilePerHour", MILE / 3600.0),
    ("MillimeterPerHour", 1e-3 / 3600.0),
    ("MillimeterPerMinute", 1e-3 / 60.0),
    ("MillimeterPerSecond", 1e-3),
    ("NanometerPerMinute", 1e-9 / 60.0),
    ("NanometerPerSecond", 1e-9),
    ("UsSurveyFootPerHour", US_SURVEY_FOOT / 3600.0),
    ("UsSurveyFootPerMinute", US_SURVEY_FOOT / 60.0),
    ("UsSurveyFootPerSecond", US_SURVEY_FOOT),
    ("YardPerHour", YARD / 3600.0),
    ("YardPerMinute", YARD / 60.0),
    ("YardPerSecond", YARD),
];

/// Volume, in cubic meters.
const VOLUME: &[(&str, f64)] = &[
    ("AcreFoot", 1.0 / 0.000810714),
    ("AuTablespoon", 2e-5),
    ("BoardFoot", 2.3597372158e-3),
    ("Centiliter", 1e-5),
    ("CubicCentimeter", 1e-6),
    ("CubicDecimeter", 1e-3),
    ("CubicFoot", CUBIC_FOOT),
    ("CubicHectometer", 1e6),
    ("CubicInch", 1.6387064e-5),
    ("CubicKilometer", 1e9),
    ("CubicMeter", 1.0),
    ("CubicMicrometer", 1e-18),
    ("CubicMile", 4.168_181_825_440_579_4e9),
    ("CubicMillimeter", 1e-9),
    ("CubicYard", 0.764554857984),
    ("Decaliter", 1e-2),
    ("DecausGallon", US_GALLON * 10.0),
    ("Deciliter", 1e-4),
    ("DeciusGallon", US_GALLON / 10.0),
    ("HectocubicFoot", CUBIC_FOOT * 100.0),
    ("HectocubicMeter", 100.0),
    ("Hectoliter", 0.1),
    ("HectousGallon", US_GALLON * 100.0),
    ("ImperialBeerBarrel", 0.16365924),
    ("ImperialGallon", IMPERIAL_GALLON),
    ("ImperialOunce", IMPERIAL_GALLON / 160.0),
    ("ImperialPint", IMPERIAL_GALLON / 8.0),
    ("KilocubicFoot", CUBIC_FOOT * 1e3),
    ("KilocubicMeter", 1e3),
    ("KiloimperialGallon", IMPERIAL_GALLON * 1e3),
    ("Kiloliter", 1.0),
    ("KilousGallon", US_GALLON * 1e3),
    ("Liter", 1e-3),
    ("MegacubicFoot", CUBIC_FOOT * 1e6),
    ("MegaimperialGallon", IMPERIAL_GALLON * 1e6),
    ("Megaliter", 1e3),
    ("MegausGallon", US_GALLON * 1e6),
    ("MetricCup", 2.5e-4),
    ("MetricTeaspoon", 5e-6),
    ("Microliter", 1e-9),
    ("Milliliter", 1e-6),
    ("OilBarrel", 0.158987294928),
    ("UkTablespoon", 1.5e-5),
    ("UsBeerBarrel", 0.1173477658),
    ("UsCustomaryCup", US_GALLON / 16.0),
    ("UsGallon", US_GALLON),
    ("UsLegalCup", 2.4e-4),
    ("UsOunce", US_GALLON / 128.0),
    ("UsPint", US_GALLON / 8.0),
    ("UsQuart", US_GALLON / 4.0),
    ("UsTablespoon", US_GALLON / 256.0),
    ("UsTeaspoon", US_GALLON / 768.0),
];

/// Temperatures: kelvin = value * scale + offset.
const TEMPERATURE: &[(&str, f64, f64)] = &[
    ("DegreeCelsius", 1.0, 273.15),
    ("DegreeDelisle", -2.0 / 3.0, 373.15),
    ("DegreeFahrenheit", 5.0 / 9.0, 459.67 * 5.0 / 9.0),
    ("DegreeNewton", 100.0 / 33.0, 273.15),
    ("DegreeRankine", 5.0 / 9.0, 0.0),
    ("DegreeReaumur", 1.25, 273.15),
    ("DegreeRoemer", 40.0 / 21.0, 273.15 - 7.5 * 40.0 / 21.0),
    ("Kelvin", 1.0, 0.0),
    ("MillidegreeCelsius", 1e-3, 273.15),
    ("SolarTemperature", 5778.0, 0.0),
];

fn factor(table: &[(&str, f64)], unit: &str) -> Option<f64> {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(unit))
        .map(|(_, f)| *f)
}

/// `value` from unit `from` to unit `to` of `table` (null when a unit is unknown).
fn linear(table: &[(&str, f64)], v: &[Val]) -> Val {
    let (Some(x), Some(from), Some(to)) = (a0(v).as_f64(), at(v, 1).as_str(), at(v, 2).as_str())
    else {
        return Val::Null;
    };
    match (factor(table, from), factor(table, to)) {
        (Some(f), Some(t)) => Val::Real(x * f / t),
        _ => Val::Null,
    }
}

fn angle(v: &[Val]) -> Val {
    let (Some(x), Some(from), Some(to)) = (a0(v).as_f64(), at(v, 1).as_str(), at(v, 2).as_str())
    else {
        return Val::Null;
    };
    let degrees = if from.eq_ignore_ascii_case("Tilt") {
        x.asin() * DEGREE_PER_RADIAN
    } else {
        match factor(ANGLE, from) {
            Some(f) => x * f,
            None => return Val::Null,
        }
    };
    if to.eq_ignore_ascii_case("Tilt") {
        return Val::Real((degrees / DEGREE_PER_RADIAN).sin());
    }
    factor(ANGLE, to).map_or(Val::Null, |t| Val::Real(degrees / t))
}

fn temperature(v: &[Val]) -> Val {
    let (Some(x), Some(from), Some(to)) = (a0(v).as_f64(), at(v, 1).as_str(), at(v, 2).as_str())
    else {
        return Val::Null;
    };
    let find = |u: &str| {
        TEMPERATURE
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(u))
            .map(|(_, s, o)| (*s, *o))
    };
    match (find(from), find(to)) {
        (Some((fs, fo)), Some((ts, to))) => Val::Real((x * fs + fo - to) / ts),
        _ => Val::Null,
    }
}

fn convert(c: &FnCall<'_>, f: crate::udf::rowfn::RowFnPtr) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Real, f))
}

pub(super) fn convert_angle(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, angle)
}

pub(super) fn convert_energy(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, |v| linear(ENERGY, v))
}

pub(super) fn convert_force(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, |v| linear(FORCE, v))
}

pub(super) fn convert_length(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, |v| linear(LENGTH, v))
}

pub(super) fn convert_mass(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, |v| linear(MASS, v))
}

pub(super) fn convert_speed(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, |v| linear(SPEED, v))
}

pub(super) fn convert_volume(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, |v| linear(VOLUME, v))
}

pub(super) fn convert_temperature(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    convert(c, temperature)
}
