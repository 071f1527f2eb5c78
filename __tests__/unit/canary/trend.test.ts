import { describe, expect, it } from 'vitest'
import {
  appendHistory,
  type CanarySample,
  median,
  parseHistory,
  trendWarnings
} from '../../../src/canary/trend.js'

const A = 'nixbuilder@10.0.0.5:22'
const B = 'root@10.0.0.6:2222'

function at(minute: number, builder: string, figures: Partial<CanarySample> = {}): CanarySample {
  return { time: new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString(), builder, ...figures }
}

function builds(builder: string, ...buildSeconds: number[]): CanarySample[] {
  return buildSeconds.map((seconds, index) => at(index, builder, { buildSeconds: seconds }))
}

describe('median', () => {
  it('takes the middle value of an odd count, whatever the order', () => {
    expect(median([5, 1, 3])).toBe(3)
  })

  it('averages the two middle values of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })

  it('is NaN for no values, and does not reorder its input', () => {
    expect(median([])).toBeNaN()
    const values = [3, 1, 2]
    median(values)
    expect(values).toEqual([3, 1, 2])
  })
})

describe('appendHistory', () => {
  it('keeps the newest N samples per builder, each builder on its own', () => {
    const history = [...builds(A, 1, 2, 3, 4), ...builds(B, 10)]
    const current = [at(60, A, { buildSeconds: 5 }), at(60, B, { buildSeconds: 11 })]
    const kept = appendHistory(history, current, 3)
    expect(kept.filter(s => s.builder === A).map(s => s.buildSeconds)).toEqual([3, 4, 5])
    expect(kept.filter(s => s.builder === B).map(s => s.buildSeconds)).toEqual([10, 11])
  })

  it('orders by time even when the history comes back shuffled', () => {
    const kept = appendHistory([at(5, A, { buildSeconds: 5 }), at(1, A, { buildSeconds: 1 })], [], 20)
    expect(kept.map(s => s.buildSeconds)).toEqual([1, 5])
  })

  it('keeps 20 per builder by default', () => {
    const history = builds(A, ...Array.from({ length: 30 }, (_, i) => i))
    expect(appendHistory(history, [])).toHaveLength(20)
    expect(appendHistory(history, [])[0]?.buildSeconds).toBe(10)
  })
})

describe('trendWarnings', () => {
  const history = builds(A, 3, 2, 4, 3, 3) // median 3

  it('warns only above factor × median, naming builder, figure, value, median, runs and factor', () => {
    expect(trendWarnings(history, [at(60, A, { buildSeconds: 9 })], 3)).toEqual([])
    const [warning, ...rest] = trendWarnings(history, [at(60, A, { buildSeconds: 12.4 })], 3)
    expect(rest).toEqual([])
    expect(warning).toMatchObject({ builder: A, figure: 'build', current: 12.4, median: 3, factor: 3 })
    expect(warning?.message).toBe(
      'nixbuilder@10.0.0.5:22: build took 12.4 s, 4.1× its median of 3.0 s over the last 5 runs (trend-factor 3)'
    )
  })

  it('judges upload and download like build', () => {
    const past = [0, 1, 2].map(i => at(i, A, { uploadSeconds: 1, downloadSeconds: 2 }))
    const warnings = trendWarnings(past, [at(60, A, { uploadSeconds: 5, downloadSeconds: 5 })], 2)
    expect(warnings.map(w => w.figure)).toEqual(['upload', 'download'])
    expect(warnings[0]?.message).toContain('upload took 5.0 s')
  })

  it('stays quiet until a figure has minSamples earlier values', () => {
    const two = builds(A, 1, 1)
    expect(trendWarnings(two, [at(60, A, { buildSeconds: 100 })], 3)).toEqual([])
    expect(trendWarnings(two, [at(60, A, { buildSeconds: 100 })], 3, 2)).toHaveLength(1)
  })

  it('compares each builder with its own history only', () => {
    const mixed = [...builds(A, 1, 1, 1), ...builds(B, 10, 10, 10)]
    const current = [at(60, A, { buildSeconds: 5 }), at(60, B, { buildSeconds: 5 })]
    expect(trendWarnings(mixed, current, 3).map(w => w.builder)).toEqual([A])
    expect(trendWarnings(mixed, [at(60, 'new@10.0.0.9:22', { buildSeconds: 500 })], 3)).toEqual([])
  })

  it('ignores a figure the run did not measure, and a zero median', () => {
    expect(trendWarnings(history, [at(60, A, { uploadSeconds: 50 })], 3)).toEqual([])
    const instant = [0, 1, 2].map(i => at(i, A, { uploadSeconds: 0 }))
    expect(trendWarnings(instant, [at(60, A, { uploadSeconds: 0.3 })], 3)).toEqual([])
  })
})

describe('parseHistory', () => {
  it('reads back what appendHistory produced', () => {
    const samples = [at(1, A, { connectMs: 40, buildSeconds: 3, uploadSeconds: 1.5, downloadSeconds: 0.5 })]
    expect(parseHistory(JSON.stringify(samples))).toEqual(samples)
  })

  it('drops entries that are not well-formed samples and keeps the rest', () => {
    const good = at(1, A, { buildSeconds: 3 })
    const json = JSON.stringify([
      good,
      null,
      42,
      'text',
      [],
      { builder: A },
      { time: 'yesterday', builder: A },
      { time: good.time, builder: '' },
      { time: good.time, builder: A, buildSeconds: '3' },
      { time: good.time, builder: A, uploadSeconds: -1 },
      { ...good, extra: 'ignored' }
    ])
    expect(parseHistory(json)).toEqual([good, good])
  })

  it('never throws: bad JSON or a non-array is no history', () => {
    expect(parseHistory('{not json')).toEqual([])
    expect(parseHistory('{"samples": []}')).toEqual([])
    expect(parseHistory('')).toEqual([])
  })
})
