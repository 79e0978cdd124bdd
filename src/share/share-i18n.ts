/**
 * The customer page's language and texts: Chinese or English, chosen from the browser's
 * `Accept-Language` (RFC 9110: ranges with q-values; the highest q wins, the first listed
 * on a tie; `zh`, `zh-CN`, `zh-Hans`, `zh-TW`... are Chinese; anything else, or nothing, English).
 */

/** The page's languages. */
export type ShareLanguage = 'zh' | 'en';

/** The language to answer in for an `Accept-Language` header value ('' when absent). */
export function pickLanguage(acceptLanguage: string): ShareLanguage {
  let best: { lang: ShareLanguage; q: number } | null = null;
  for (const part of acceptLanguage.slice(0, 1000).split(',')) {
    const [range = '', ...params] = part.trim().split(';');
    const tag = range.trim().toLowerCase();
    if (tag === '') continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (q <= 0 || q > 1) continue;
    const lang: ShareLanguage | null = tag === 'zh' || tag.startsWith('zh-') ? 'zh' : tag === '*' ? null : 'en';
    if (lang === null) continue;
    if (best === null || q > best.q) best = { lang, q };
  }
  return best?.lang ?? 'en';
}

/** Every text of the page, by key; the browser module reads them from the page. */
export const SHARE_TEXTS: Readonly<Record<ShareLanguage, Readonly<Record<string, string>>>> = {
  en: {
    htmlLang: 'en',
    title: 'Your technician',
    loading: 'Loading…',
    assigned: 'Your visit is scheduled',
    departed: 'Your technician is on the way',
    arrived: 'Your technician has arrived',
    in_service: 'Work in progress',
    completed: 'The job is done. Thank you!',
    cancelled: 'This visit was cancelled',
    scheduledFor: 'Scheduled for {time}',
    eta: 'Arrives in about {min} min',
    etaSoon: 'Arriving now',
    distance: '{km} km away',
    distanceM: '{m} m away',
    updated: 'Updated {time}',
    reconnecting: 'Connection lost, reconnecting…',
    gone: 'This tracking link has expired.',
    notFound: 'This tracking link is not valid.',
    you: 'You',
    technician: 'Technician',
    viaRoute: 'by road',
    viaLine: 'estimated',
    mapLabel: 'Map: your technician and your address',
  },
  zh: {
    htmlLang: 'zh-CN',
    title: '您的师傅',
    loading: '加载中…',
    assigned: '上门服务已预约',
    departed: '师傅正在赶来',
    arrived: '师傅已到达',
    in_service: '正在服务中',
    completed: '服务已完成，谢谢！',
    cancelled: '本次上门已取消',
    scheduledFor: '预约时间 {time}',
    eta: '约 {min} 分钟后到达',
    etaSoon: '即将到达',
    distance: '距您 {km} 公里',
    distanceM: '距您 {m} 米',
    updated: '更新于 {time}',
    reconnecting: '连接中断，正在重连…',
    gone: '此跟踪链接已失效。',
    notFound: '此跟踪链接无效。',
    you: '您',
    technician: '师傅',
    viaRoute: '按道路',
    viaLine: '估算',
    mapLabel: '地图：师傅与您的地址',
  },
};
