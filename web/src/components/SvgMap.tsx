import { formatDistance } from '../format.ts';

export interface MapPoint {
  latitude: number;
  longitude: number;
}

export interface MapMarker extends MapPoint {
  label: string;
  kind: 'car' | 'person';
  heading?: number | null;
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

/**
 * A map drawn from coordinates alone, so it works with no internet: zones as circles, trips as
 * lines, the car and people as markers. A local flat projection is exact enough across a town.
 */
export function SvgMap({ title, markers, zones, tracks }: SvgMapProps) {
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

  return (
    <svg className="map" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="map-title">
      <title id="map-title">{title}</title>
      <rect width={WIDTH} height={HEIGHT} className="map-ground" />
      {zones.map((zone) => {
        const c = screen(zone);
        return (
          <g key={zone.name} className="map-zone">
            <circle cx={c.x} cy={c.y} r={Math.max(4, zone.radius * scale)} />
            <text x={c.x} y={c.y - Math.max(4, zone.radius * scale) - 6} textAnchor="middle">
              {zone.name}
            </text>
          </g>
        );
      })}
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
      {markers.map((marker) => {
        const c = screen(marker);
        return (
          <g
            key={`${marker.kind}-${marker.label}`}
            className={`map-marker ${marker.kind}`}
            transform={`translate(${c.x.toFixed(1)} ${c.y.toFixed(1)})`}
            data-latitude={marker.latitude}
            data-longitude={marker.longitude}
          >
            {marker.kind === 'car' && typeof marker.heading === 'number' ? (
              <path d="M0,-16 L6,-6 L-6,-6 Z" transform={`rotate(${marker.heading})`} />
            ) : null}
            <circle r={marker.kind === 'car' ? 8 : 6} />
            <text y={marker.kind === 'car' ? 24 : -10} textAnchor="middle">
              {marker.label}
            </text>
          </g>
        );
      })}
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
