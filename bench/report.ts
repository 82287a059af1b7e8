// The result of every section: rows of the markdown table, plus raw data for bench/results.json.

/** One line of the table; `met` is null when the row has no target (information only) or could not be measured. */
export interface Row {
  section: string;
  metric: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
  met: boolean | null;
}

export interface SectionResult {
  name: string;
  /** Set when the section could not run here: why. */
  unavailable?: string;
  rows: Row[];
  data: unknown;
}

export function row(section: string, metric: string, fields: Partial<Omit<Row, 'section' | 'metric'>>): Row {
  return { section, metric, value: '', baseline: '', ratio: '', target: '', met: null, ...fields };
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

export function markdownTable(rows: readonly Row[]): string {
  const lines = [
    '| section | metric | value | baseline | ratio | target | met? |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const met = r.met === null ? (r.target === '' ? '' : 'n/a') : r.met ? 'yes' : '**NO**';
    lines.push(`| ${[r.section, r.metric, r.value, r.baseline, r.ratio, r.target, met].map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}
