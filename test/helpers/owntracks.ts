/** A tracker's credentials as `POST /api/people/{id}/trackers` answers them. */
export interface Phone {
  username: string;
  password: string;
}

export interface Place {
  latitude: number;
  longitude: number;
}

/**
 * A location fix as the OwnTracks app posts it in HTTP mode (Basic auth, X-Limit-U / X-Limit-D,
 * JSON), taken `at` (ms; whole seconds go over, as the app sends them) with 10 m accuracy.
 */
export function postOwnTracksFix(hubUrl: string, phone: Phone, place: Place, at = Date.now()): Promise<Response> {
  return fetch(`${hubUrl}/api/owntracks`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${phone.username}:${phone.password}`).toString('base64')}`,
      'content-type': 'application/json',
      'x-limit-u': phone.username,
      'x-limit-d': 'phone',
    },
    body: JSON.stringify({
      _type: 'location',
      lat: place.latitude,
      lon: place.longitude,
      acc: 10,
      tst: Math.floor(at / 1000),
    }),
  });
}
