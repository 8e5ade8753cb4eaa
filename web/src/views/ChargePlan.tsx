import { type FormEvent, useEffect, useId, useState } from 'react';
import { routeRefusal } from '../api/client.ts';
import type { ChargePlan as Plan, PriceSeries, Thing } from '../api/types.ts';
import { Empty, Loading, NotShared, Problem } from '../components/states.tsx';
import { counted, formatKwh, formatNumber, formatTime } from '../format.ts';
import { type Resource, useLive, useResource, useSession } from '../live/context.ts';
import { browserZone, clockIn, householdZoneApart, nextLocalTime } from '../time.ts';

/** Plans change as prices and the car's charge do; the planner re-plans, the view asks this often. */
const REFRESH_MS = 60_000;

const clock = (time: string | number) =>
  new Date(time).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
const money = (amount: number, currency: string | null) =>
  currency
    ? new Intl.NumberFormat(undefined, { style: 'currency', currency, maximumFractionDigits: 2 }).format(amount)
    : formatNumber(amount, 2);

/**
 * The car's active charge plan (`GET /api/energy/plans`): when it charges, how much, at what cost,
 * and whether it can be met, drawn over the price series (`GET /api/energy/prices`). Hubs without
 * the energy routes, and people not allowed to read them, get an empty state.
 */
export function ChargePlanCard({ car }: { car: Thing }) {
  const [plans, reloadPlans] = useResource<Plan[]>('/api/energy/plans', '/api/energy/plans');
  const [prices, reloadPrices] = useResource<PriceSeries>('/api/energy/prices', '/api/energy/prices');
  useEffect(() => {
    const timer = setInterval(() => {
      reloadPlans();
      reloadPrices();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reloadPlans, reloadPrices]);

  // Whether this person may plan is the hub's word (GET /api/session), not the dashboard's guess;
  // until the hub has said, neither the control nor the refusal is shown.
  const { me } = useSession();
  const planning = me === null ? null : routeRefusal(me, 'POST /api/energy/plans') === null;
  const headingId = `plan-${car.id}`;
  const zoneNoteId = `plan-zone-${car.id}`;
  const plan = plans.state === 'ready' ? plans.data.find((p) => p.vehicle === car.id) : undefined;
  // Times here are the browser's; where the household's clocks read otherwise, both are named.
  const householdZone = householdZoneApart(me?.timeZone ?? null);
  return (
    <section className="card" aria-labelledby={headingId}>
      <h3 id={headingId}>Charge plan</h3>
      {plans.state === 'loading' ? <Loading what="the charge plan" /> : null}
      {plans.state === 'missing' ? <Empty>Charge planning is not available on this hub.</Empty> : null}
      {plans.state === 'not-shared' ? <NotShared what="Charge planning is" /> : null}
      {plans.state === 'error' ? <Problem>Could not load the charge plan: {plans.message}</Problem> : null}
      {plans.state === 'ready' && !plan ? <Empty>No charge plan for {car.name}.</Empty> : null}
      {plans.state === 'ready' && householdZone ? (
        <p className="help" id={zoneNoteId}>
          Times here are your time ({browserZone()}); the household's time zone is {householdZone}.
        </p>
      ) : null}
      {plan ? <PlanDetails car={car} plan={plan} prices={prices} householdZone={householdZone} /> : null}
      {plans.state === 'ready' && planning === true ? (
        <PlanForm car={car} onPlanned={reloadPlans} zoneNoteId={householdZone ? zoneNoteId : undefined} />
      ) : null}
      {plans.state === 'ready' && planning === false ? (
        <p className="help">Planning a charge needs an adult or owner.</p>
      ) : null}
    </section>
  );
}

/**
 * Plans a charge of the car on a charger (`POST /api/energy/plans`): to a state of charge by a time
 * of day. Shown only to people the hub lets plan; the hub's refusal of the plan itself (no price,
 * the car not there) is shown as it said it.
 */
function PlanForm({ car, onPlanned, zoneNoteId }: { car: Thing; onPlanned: () => void; zoneNoteId?: string }) {
  const { client } = useSession();
  const { things } = useLive();
  const chargers = [...things.values()].filter((thing) => thing.kind === 'charger');
  const [charger, setCharger] = useState('');
  const [targetSoc, setTargetSoc] = useState('80');
  const [by, setBy] = useState('07:00');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const id = useId();
  const chosen = charger || chargers[0]?.id || '';

  if (chargers.length === 0) return <p className="help">There is no charger to plan a charge on.</p>;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    client
      .send('POST', '/api/energy/plans', {
        vehicle: car.id,
        charger: chosen,
        targetSoc: Number(targetSoc),
        // The moment the page's clock names, not the time of day on the household's clock.
        by: nextLocalTime(by) ?? by,
      })
      .then(onPlanned, (error: unknown) => setProblem(error instanceof Error ? error.message : String(error)))
      .finally(() => setBusy(false));
  };

  return (
    <form className="history-form" aria-label={`Plan a charge of ${car.name}`} onSubmit={submit}>
      {chargers.length > 1 ? (
        <div className="field">
          <label htmlFor={`${id}-charger`}>Charger</label>
          <select id={`${id}-charger`} value={chosen} onChange={(e) => setCharger(e.target.value)}>
            {chargers.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <div className="field">
        <label htmlFor={`${id}-soc`}>Charge to (%)</label>
        <input
          id={`${id}-soc`}
          type="number"
          min={1}
          max={100}
          required
          value={targetSoc}
          onChange={(e) => setTargetSoc(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-by`}>By{zoneNoteId ? ' (your time)' : ''}</label>
        <input
          id={`${id}-by`}
          type="time"
          required
          value={by}
          aria-describedby={zoneNoteId}
          onChange={(e) => setBy(e.target.value)}
        />
      </div>
      <button type="submit" className="primary" disabled={busy}>
        Plan charge
      </button>
      {problem ? <Problem>Could not plan the charge: {problem}</Problem> : null}
    </form>
  );
}

interface PlanProps {
  car: Thing;
  plan: Plan;
  /** Loaded beside the plan, so the plan may be drawn before its prices arrive. */
  prices: Resource<PriceSeries>;
}

function PlanDetails({ car, plan, prices, householdZone }: PlanProps & { householdZone: string | null }) {
  const goal = plan.targetSoc !== null ? `to ${formatNumber(plan.targetSoc, 0)} %` : formatKwh(plan.neededKwh);
  const shortfall =
    plan.shortfallSoc !== null && plan.shortfallSoc > 0
      ? `${formatNumber(plan.shortfallSoc, 0)} % (${formatKwh(plan.shortfallKwh)})`
      : formatKwh(plan.shortfallKwh);
  // A weekly plan comes back at the same time on the household's clocks, which is what to name.
  const household = householdZone
    ? ` (${clockIn(plan.by, householdZone)} in ${householdZone}, the household's time)`
    : '';
  return (
    <>
      <p>
        Charge {goal} by {formatTime(plan.by)}
        {household}
        {plan.repeat ? ' (weekly)' : ''}.
      </p>
      <p className={`plan-status ${plan.feasible ? 'ok' : 'bad'}`}>
        {plan.feasible ? 'Feasible' : `Not feasible: ${plan.reason ?? `${shortfall} short by the deadline`}`}
      </p>
      <dl className="facts">
        <div>
          {/* What the slots deliver, not the car's or the charger's energy readings. */}
          <dt>Planned energy</dt>
          <dd>{formatKwh(plan.energyKwh)}</dd>
        </div>
        <div>
          <dt>Cost</dt>
          <dd>{money(plan.cost, plan.currency)}</dd>
        </div>
        <div>
          <dt>Slots</dt>
          <dd>{plan.slots.length}</dd>
        </div>
      </dl>
      <PlanChart car={car} plan={plan} prices={prices} />
      {plan.slots.length > 0 ? (
        <details>
          <summary>Charging slots</summary>
          <ul className="list">
            {plan.slots.map((slot) => (
              <li key={slot.start}>
                {clock(slot.start)}–{clock(slot.end)} · {formatNumber(slot.powerKw)} kW · {formatKwh(slot.energyKwh)} ·{' '}
                {money(slot.cost, plan.currency)}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </>
  );
}

const W = 320;
const H = 120;
const LEFT = 4;
const RIGHT = 316;
const TOP = 12;
const BOTTOM = 100;

/** Planned power (bars) over the price of each slot (grey, behind), from now (or the first slot) to the deadline. */
function PlanChart({ car, plan, prices: resource }: PlanProps) {
  const prices = resource.state === 'ready' ? resource.data : null;
  const by = Date.parse(plan.by);
  const starts = [Date.now(), ...plan.slots.map((s) => Date.parse(s.start))];
  const from = Math.min(...starts);
  const to = Math.max(by, ...plan.slots.map((s) => Date.parse(s.end)));
  if (!(to > from)) return null;
  const priceSlots = (prices?.slots ?? []).filter((s) => Date.parse(s.end) > from && Date.parse(s.start) < to);
  const maxPrice = Math.max(0, ...priceSlots.map((s) => s.price));
  const maxPower = Math.max(0, ...plan.slots.map((s) => s.powerKw));
  const x = (t: number) => LEFT + ((Math.min(Math.max(t, from), to) - from) / (to - from)) * (RIGHT - LEFT);
  const height = (value: number, max: number) => (max > 0 ? (Math.max(0, value) / max) * (BOTTOM - TOP) : 0);
  const currency = prices?.currency ?? plan.currency ?? '';
  const priceWords =
    priceSlots.length > 0
      ? `, over prices from ${formatNumber(Math.min(...priceSlots.map((s) => s.price)), 3)} to ${formatNumber(maxPrice, 3)} ${currency}/kWh`
      : resource.state === 'loading'
        ? ', prices still loading'
        : ', no prices known';
  const label = `Charge plan for ${car.name}: ${counted(plan.slots.length, 'slot')} up to ${formatNumber(maxPower)} kW between ${clock(from)} and ${clock(by)}${priceWords}`;
  return (
    <>
      <svg className="plan-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
        <title>{label}</title>
        {priceSlots.map((s) => {
          const h = height(s.price, maxPrice);
          return (
            <rect
              key={`p-${s.start}`}
              className="price"
              x={x(Date.parse(s.start)) + 0.5}
              width={Math.max(0.5, x(Date.parse(s.end)) - x(Date.parse(s.start)) - 1)}
              y={BOTTOM - h}
              height={h}
            />
          );
        })}
        {plan.slots.map((s) => {
          const left = x(Date.parse(s.start));
          const width = Math.max(1, x(Date.parse(s.end)) - left);
          const h = height(s.powerKw, maxPower);
          // Narrower than the price bar behind it, so both stay visible.
          return (
            <rect
              key={`s-${s.start}`}
              className="power"
              x={left + width * 0.2}
              width={width * 0.6}
              y={BOTTOM - h}
              height={h}
            />
          );
        })}
        <line className="deadline" x1={x(by)} x2={x(by)} y1={TOP - 4} y2={BOTTOM} />
        <line x1={LEFT} x2={RIGHT} y1={BOTTOM} y2={BOTTOM} stroke="currentColor" strokeOpacity={0.4} />
        <text className="axis" x={LEFT} y={BOTTOM + 12}>
          {clock(from)}
        </text>
        <text className="axis" x={RIGHT} y={BOTTOM + 12} textAnchor="end">
          {clock(to)}
        </text>
        <text className="axis" x={LEFT} y={TOP - 3}>
          {maxPower > 0 ? `${formatNumber(maxPower)} kW` : ''}
        </text>
        <text className="axis" x={RIGHT} y={TOP - 3} textAnchor="end">
          {maxPrice > 0 ? `${formatNumber(maxPrice, 3)} ${currency}/kWh` : ''}
        </text>
      </svg>
      <ul className="legend" aria-hidden="true">
        <li>
          <span className="swatch power" />
          Planned power
        </li>
        <li>
          <span className="swatch price" />
          Price
        </li>
      </ul>
    </>
  );
}
