/**
 * Bar charts drawn as SVG (no chart library). Each chart is a <figure> with a
 * visible title, an SVG with role="img" and an aria-label that states the
 * totals, and the same numbers as a table under "Show data table".
 */
import type { ComponentChildren } from "preact";
import { useId } from "preact/hooks";
import type { ActivityDay, DayCount } from "../api";
import { num, shortDay } from "../format";

const W = 960;
const H = 260;
const M = { top: 14, right: 12, bottom: 40, left: 52 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

/** A round top for the y axis and its tick step. */
export function niceScale(max: number): { top: number; step: number } {
  if (max <= 4) return { top: Math.max(1, Math.ceil(max)), step: 1 };
  const rough = max / 4;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= rough) ?? 10 * pow;
  return { top: Math.ceil(max / step) * step, step };
}

function YAxis({ top, step, label }: { top: number; step: number; label: string }) {
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return (
    <g class="axis" aria-hidden="true">
      {ticks.map((v) => {
        const y = M.top + PH - (v / top) * PH;
        return (
          <g key={v}>
            <line x1={M.left} x2={W - M.right} y1={y} y2={y} class={v === 0 ? "axis-line" : "grid-line"} />
            <text x={M.left - 6} y={y + 4} text-anchor="end">
              {num(v)}
            </text>
          </g>
        );
      })}
      <text x={14} y={M.top + PH / 2} text-anchor="middle" transform={`rotate(-90 14 ${M.top + PH / 2})`}>
        {label}
      </text>
    </g>
  );
}

function XLabels({ days, every }: { days: string[]; every: number }) {
  const band = PW / Math.max(1, days.length);
  const shown: number[] = [];
  days.forEach((_, i) => {
    if (i % every === 0) shown.push(i);
  });
  const lastIdx = days.length - 1;
  if (lastIdx > 0 && lastIdx - (shown[shown.length - 1] ?? 0) >= every / 2) shown.push(lastIdx);
  return (
    <g class="axis" aria-hidden="true">
      {shown.map((i) => {
        const x = M.left + band * i + band / 2;
        return (
          <g key={i}>
            <line x1={x} x2={x} y1={M.top + PH} y2={M.top + PH + 5} class="axis-line" />
            <text x={x} y={M.top + PH + 18} text-anchor="middle">
              {shortDay(days[i] ?? "")}
            </text>
          </g>
        );
      })}
      <text x={M.left + PW / 2} y={H - 4} text-anchor="middle">
        Day (UTC)
      </text>
    </g>
  );
}

/** A colour key: the swatch class of each bar colour and what it stands for. */
type Legend = readonly { swatch: string; label: string }[];

function Figure(props: { title: string; summary: string; legend: Legend; svg: ComponentChildren; table: ComponentChildren; testId: string }) {
  const titleId = useId();
  return (
    <figure class="chart" aria-labelledby={titleId} data-testid={props.testId}>
      <figcaption>
        <h2 id={titleId}>{props.title}</h2>
        <p class="chart-summary">{props.summary}</p>
        <ul class="legend" aria-hidden="true">
          {props.legend.map((l) => (
            <li key={l.label}>
              <span class={`swatch ${l.swatch}`} /> {l.label}
            </li>
          ))}
        </ul>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}. ${props.summary}`} preserveAspectRatio="xMidYMid meet">
        {props.svg}
      </svg>
      <details>
        <summary>Show data table</summary>
        {props.table}
      </details>
    </figure>
  );
}

function CountRow({ label, counts }: { label: string; counts: number[] }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      {counts.map((n, i) => (
        <td class="num" key={i}>
          {num(n)}
        </td>
      ))}
    </tr>
  );
}

/** The numbers behind a chart: a row per day, a column per series, totals in the footer. */
function DayTable(props: { caption: string; series: string[]; rows: { day: string; counts: number[] }[]; totals: number[] }) {
  return (
    <table class="data">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Day (UTC)</th>
          {props.series.map((s) => (
            <th scope="col" class="num" key={s}>
              {s}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <CountRow key={r.day} label={r.day} counts={r.counts} />
        ))}
      </tbody>
      <tfoot>
        <CountRow label="Total" counts={props.totals} />
      </tfoot>
    </table>
  );
}

/** Certificates expiring per day over the window (bars within 7 days in another colour). */
export function ExpiryChart({ expiry }: { expiry: DayCount[] }) {
  const max = Math.max(0, ...expiry.map((d) => d.count));
  const { top, step } = niceScale(max);
  const total = expiry.reduce((s, d) => s + d.count, 0);
  const soon = expiry.slice(0, 7).reduce((s, d) => s + d.count, 0);
  const peak = expiry.reduce<DayCount | undefined>((p, d) => (!p || d.count > p.count ? d : p), undefined);
  const days = expiry.length;
  const title = `Certificates expiring per day, next ${days} days`;
  const summary =
    total === 0
      ? `No valid certificate expires in the next ${days} days.`
      : `${num(total)} certificates expire in the next ${days} days, ${num(soon)} of them within 7 days; the most on ${peak?.day} (${num(peak?.count ?? 0)}).`;
  const band = PW / Math.max(1, days);
  const bw = Math.max(1, band * 0.75);
  return (
    <Figure
      testId="expiry-chart"
      title={title}
      summary={summary}
      legend={[
        { swatch: "swatch-soon", label: "within 7 days" },
        { swatch: "swatch-expiry", label: "later" },
      ]}
      svg={
        <>
          <YAxis top={top} step={step} label="Certificates" />
          {expiry.map((d, i) => {
            const h = (d.count / top) * PH;
            return (
              <rect key={d.day} class={i < 7 ? "bar-soon" : "bar-expiry"} x={M.left + band * i + (band - bw) / 2} y={M.top + PH - h} width={bw} height={h}>
                <title>{`${d.day}: ${num(d.count)}`}</title>
              </rect>
            );
          })}
          <XLabels days={expiry.map((d) => d.day)} every={14} />
        </>
      }
      table={
        <DayTable
          caption={`${title} (days with none are left out)`}
          series={["Certificates"]}
          rows={expiry.filter((d) => d.count > 0).map((d) => ({ day: d.day, counts: [d.count] }))}
          totals={[total]}
        />
      }
    />
  );
}

const SERIES = [
  { key: "issued", label: "Issued", cls: "bar-issued", swatch: "swatch-issued" },
  { key: "renewed", label: "Renewed", cls: "bar-renewed", swatch: "swatch-renewed" },
  { key: "revoked", label: "Revoked", cls: "bar-revoked", swatch: "swatch-revoked" },
] as const;

/** Issued / renewed / revoked per day, stacked. */
export function ActivityChart({ activity }: { activity: ActivityDay[] }) {
  const totals = { issued: 0, renewed: 0, revoked: 0 };
  for (const d of activity) {
    totals.issued += d.issued;
    totals.renewed += d.renewed;
    totals.revoked += d.revoked;
  }
  const max = Math.max(0, ...activity.map((d) => d.issued + d.renewed + d.revoked));
  const { top, step } = niceScale(max);
  const band = PW / Math.max(1, activity.length);
  const bw = Math.max(1, band * 0.7);
  const title = `Certificate activity per day, last ${activity.length} days`;
  const summary = `${num(totals.issued)} issued, ${num(totals.renewed)} renewed, ${num(totals.revoked)} revoked.`;
  return (
    <Figure
      testId="activity-chart"
      title={title}
      summary={summary}
      legend={SERIES}
      svg={
        <>
          <YAxis top={top} step={step} label="Certificates" />
          {activity.map((d, i) => {
            let y = M.top + PH;
            return (
              <g key={d.day}>
                <title>{`${d.day}: ${d.issued} issued, ${d.renewed} renewed, ${d.revoked} revoked`}</title>
                {SERIES.map((s) => {
                  const h = (d[s.key] / top) * PH;
                  y -= h;
                  return h > 0 ? <rect key={s.key} class={s.cls} x={M.left + band * i + (band - bw) / 2} y={y} width={bw} height={h} /> : null;
                })}
              </g>
            );
          })}
          <XLabels days={activity.map((d) => d.day)} every={7} />
        </>
      }
      table={
        <DayTable
          caption={title}
          series={SERIES.map((s) => s.label)}
          rows={activity.map((d) => ({ day: d.day, counts: SERIES.map((s) => d[s.key]) }))}
          totals={SERIES.map((s) => totals[s.key])}
        />
      }
    />
  );
}

/** A table of counts with a proportional bar in each row (the bar is decoration). */
export function CountTable(props: { caption: string; keyLabel: string; rows: { key: string; count: number }[]; empty: string; testId?: string }) {
  const max = Math.max(1, ...props.rows.map((r) => r.count));
  if (props.rows.length === 0) return <p class="muted" data-testid={props.testId}>{props.empty}</p>;
  return (
    <table class="data" data-testid={props.testId}>
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">{props.keyLabel}</th>
          <th scope="col" class="num">
            Count
          </th>
          <th scope="col">
            <span class="visually-hidden">Share</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <tr key={r.key}>
            <th scope="row">
              <code>{r.key}</code>
            </th>
            <td class="num">{num(r.count)}</td>
            <td class="bar-cell" aria-hidden="true">
              <span class="hbar" style={{ width: `${Math.max(1, (r.count / max) * 100)}%` }} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
