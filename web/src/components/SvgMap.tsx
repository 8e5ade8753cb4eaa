import { useId } from 'react';
import { formatDistance } from '../format.ts';
import { type Box, type MapLabel, placeLabels } from './map-labels.ts';

export interface MapPoint {
  latitude: number;
  longitude: number;
}

export interface MapMarker extends MapPoint {
  label: string;
  kind: 'car' | 'person';
  heading?: number | null;
  /** Drawn greyed, as where it was rather than where it is (a person whose phones went silent). */
  lastKnown?: boolean;
}

export interface MapZone extends MapPoint {
  name: string;
  radius: number;
}

interface SvgMapProps {
  title: string;
  markers: MapMarker[];
  zones: MapZone[];
  tracks: MapPoint[][];
}

const WIDTH = 600;
const HEIGHT = 400;
const METRES_PER_DEGREE = 111_320;
/** Markers of a kind closer than this (drawing units) would cover each other: they share one dot. */
const SAME_SPOT = 12;

type Screen = (p: MapPoint) => { x: number; y: number };

/**
 * One dot on the map: a marker, or markers of one kind at one place ("Alex, Sam" at home). A last
 * known marker shares a dot only with other last known ones, so a current dot is never greyed.
 */
interface Spot extends MapMarker {
  x: number;
  y: number;
  labels: string[];
}

function spotsOf(markers: MapMarker[], screen: Screen): Spot[] {
  const spots: Spot[] = [];
  for (const marker of markers) {
    const at = screen(marker);
    const lastKnown = marker.lastKnown === true;
    const near = spots.find(
      (s) =>
        s.kind === marker.kind &&
        (s.lastKnown === true) === lastKnown &&
        Math.hypot(s.x - at.x, s.y - at.y) < SAME_SPOT,
    );
    if (near) near.labels.push(marker.label);
    else spots.push({ ...marker, ...at, labels: [marker.label] });
  }
  return spots;
}

const dotRadius = (spot: Spot) => (spot.kind === 'car' ? 8 : 6);

/**
 * A map drawn from coordinates alone, so it works with no internet: zones as circles, trips as
 * lines, the car and people as markers. A local flat projection is exact enough across a town.
 */
export function SvgMap({ title, markers, zones, tracks }: SvgMapProps) {
  // Its own id: with two cars there are two maps, and each is named by its own title.
  const titleId = useId();
  const points: MapPoint[] = [...markers, ...zones, ...tracks.flat()];
  if (points.length === 0) return null;
  const lat0 = points.reduce((sum, p) => sum + p.latitude, 0) / points.length;
  const lon0 = points.reduce((sum, p) => sum + p.longitude, 0) / points.length;
  const cos = Math.cos((lat0 * Math.PI) / 180);
  // Metres east and north of the centre.
  const toLocal = (p: MapPoint) => ({
    x: (p.longitude - lon0) * METRES_PER_DEGREE * cos,
    y: (p.latitude - lat0) * METRES_PER_DEGREE,
  });
  let spanX = 200;
  let spanY = 200;
  for (const p of points) {
    const local = toLocal(p);
    spanX = Math.max(spanX, Math.abs(local.x));
    spanY = Math.max(spanY, Math.abs(local.y));
  }
  for (const z of zones) {
    const local = toLocal(z);
    spanX = Math.max(spanX, Math.abs(local.x) + z.radius);
    spanY = Math.max(spanY, Math.abs(local.y) + z.radius);
  }
  const scale = Math.min(WIDTH / 2 / (spanX * 1.15), HEIGHT / 2 / (spanY * 1.15));
  const screen = (p: MapPoint) => {
    const local = toLocal(p);
    return { x: WIDTH / 2 + local.x * scale, y: HEIGHT / 2 - local.y * scale };
  };
  const bar = scaleBar(scale);
  const spots = spotsOf(markers, screen);
  const rings = zones.map((zone) => ({ zone, centre: screen(zone), radius: Math.max(4, zone.radius * scale) }));
  // The car's and people's names first, so they stay by their dots; a zone's name gives way.
  const labels: MapLabel[] = [
    ...spots.map((spot) => ({
      text: spot.labels.join(', '),
      x: spot.x,
      y: spot.kind === 'car' ? spot.y + 24 : spot.y - 10,
      away: spot.kind === 'car' ? (1 as const) : (-1 as const),
    })),
    ...rings.map(({ zone, centre, radius }) => ({
      text: zone.name,
      x: centre.x,
      y: centre.y - radius - 6,
      away: -1 as const,
    })),
  ];
  const dots: Box[] = spots.map((spot) => ({
    left: spot.x - dotRadius(spot),
    right: spot.x + dotRadius(spot),
    top: spot.y - dotRadius(spot),
    bottom: spot.y + dotRadius(spot),
  }));
  const scaleBox: Box = { left: 16, right: 16 + Math.max(bar.pixels, 60), top: HEIGHT - 36, bottom: HEIGHT - 14 };
  const baselines = placeLabels(labels, [...dots, scaleBox], HEIGHT);
  const spotBaseline = (i: number) => baselines[i];
  const zoneBaseline = (i: number) => baselines[spots.length + i];

  return (
    <svg className="map" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby={titleId}>
      <title id={titleId}>{title}</title>
      <rect width={WIDTH} height={HEIGHT} className="map-ground" />
      {rings.map(({ zone, centre, radius }, i) => (
        <g key={zone.name} className="map-zone">
          <circle cx={centre.x} cy={centre.y} r={radius} />
          <text x={centre.x} y={zoneBaseline(i)} textAnchor="middle">
            {zone.name}
          </text>
        </g>
      ))}
      {tracks.map((track, i) => (
        <polyline
          // Tracks have no id of their own; their order is stable within one render.
          // biome-ignore lint/suspicious/noArrayIndexKey: the list is rebuilt whole, never reordered
          key={i}
          className="map-track"
          points={track
            .map(screen)
            .map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`)
            .join(' ')}
        />
      ))}
      {spots.map((spot, i) => (
        <g
          key={`${spot.kind}${spot.lastKnown ? '-last-known' : ''}-${spot.labels.join(',')}`}
          className={`map-marker ${spot.kind}${spot.lastKnown ? ' last-known' : ''}`}
          transform={`translate(${spot.x.toFixed(1)} ${spot.y.toFixed(1)})`}
          data-latitude={spot.latitude}
          data-longitude={spot.longitude}
        >
          {spot.kind === 'car' && typeof spot.heading === 'number' ? (
            <path d="M0,-16 L6,-6 L-6,-6 Z" transform={`rotate(${spot.heading})`} />
          ) : null}
          <circle r={dotRadius(spot)} />
          <text y={(spotBaseline(i) - spot.y).toFixed(1)} textAnchor="middle">
            {spot.labels.join(', ')}
          </text>
        </g>
      ))}
      <g className="map-scale" transform={`translate(16 ${HEIGHT - 16})`}>
        <line x1={0} x2={bar.pixels} y1={0} y2={0} />
        <text x={0} y={-6}>
          {formatDistance(bar.metres)}
        </text>
      </g>
    </svg>
  );
}

/** A round distance (1, 2 or 5 × 10ⁿ metres) that draws about a fifth of the map wide. */
function scaleBar(pixelsPerMetre: number): { metres: number; pixels: number } {
  const target = WIDTH / 5 / pixelsPerMetre;
  const power = 10 ** Math.floor(Math.log10(target));
  const metres =
    [1, 2, 5, 10]
      .map((m) => m * power)
      .filter((m) => m <= target)
      .pop() ?? power;
  return { metres, pixels: metres * pixelsPerMetre };
}
