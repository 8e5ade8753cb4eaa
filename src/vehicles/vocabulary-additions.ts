import { CAR_DOORS, capabilities } from '../model/vocabulary.ts';

/** The `vehicle` capability of the shared vocabulary (windows, horn, odometer…). */
export const vehicleCapability = capabilities.vehicle;

export const WINDOW_CHOICES = [...CAR_DOORS, 'all'] as const;
