/** How CodeDeploy moves an alias to a new version: a canary share for some minutes, then all; or all at once. */
export type TrafficShift = { readonly canaryPercent: number; readonly canaryMinutes: number } | 'all-at-once';

/** 10% for 5 minutes: long enough for the one-minute alarms to see the canary, short enough not to stall a deploy. */
export const DEFAULT_TRAFFIC_SHIFT: TrafficShift = { canaryPercent: 10, canaryMinutes: 5 };
