// The waiting room in the spec's market's languages, Thai and English. The gateway picks the
// page's language from Accept-Language (it writes <html lang>); the reader's own choice (the
// switch) is kept in localStorage and wins. Numbers and times are formatted for the language.
const CHOICE_KEY = "booking-rush.lang";
export const LANGUAGES = { en: "English", th: "ไทย" };

const TEXTS = {
  en: {
    "page.title": "Waiting room · Booking Rush",
    "nav.events": "Events",
    "nav.bookings": "My bookings",
    "nav.language": "Language",
    "room.kicker": "Waiting room",
    "room.loading": "Loading…",
    "room.joining": "Joining the line…",
    "standing.position": "Your place in line",
    "standing.ahead": "People ahead of you",
    "standing.eta": "Estimated wait",
    "standing.waiting": "In line",
    "standing.rate": "Let in during the last minute",
    "standing.progress": "Progress to the front",
    "standing.hint":
      "Keep this page open, or ask to be told when it is your turn: leaving the page for long " +
      "without asking gives up your place. You go on to booking by yourself when it is your turn.",
    "standing.leave": "Leave the line",
    "standing.drawn": "drawn at opening",
    "eta.paused": "paused: nobody is let in right now, your place is kept",
    "eta.not_open_at": "not open yet (opens at {time})",
    "eta.not_open": "not open yet",
    "eta.sold_out": "sold out",
    "eta.closed": "the room is closed",
    "eta.unknown": "unknown",
    "eta.under_minute": "less than a minute",
    "eta.one_minute": "about 1 minute",
    "eta.minutes": "about {n} minutes",
    "eta.range": "about {from}–{to} minutes",
    "eta.hours": "{h} h {m}",
    "state.waiting": "You are in line. Keep this page open: it moves on to booking when it is your turn.",
    "state.waiting_still":
      "You are in line. Nobody has been let in during the last minute (the sale may be paused); " +
      "your place is kept.",
    "state.prequeue_at": "The sale opens at {time}. ",
    "state.prequeue_soon": "The sale opens soon. ",
    "state.prequeue":
      "Everyone who joins before it opens is given a place in a random order when it opens: " +
      "there is no need to rush.",
    "state.paused": "The sale is paused. Your place in line is kept.",
    "state.closed": "The waiting room is closed: nobody is being let in right now.",
    "state.closed_tenant_suspended": "This sale is stopped: the organiser's account is suspended.",
    "state.closed_event_cancelled":
      "The organiser cancelled this event: nothing more is sold, and every booking is refunded in full.",
    "state.sold_out": "Sold out: every seat is sold or held. If held seats come back, the line moves again.",
    "state.admitted": "It is your turn…",
    "state.other": "The line says: {state}",
    "state.left": "You left the line: your place went to the people behind you.",
    "state.your_turn": "It is your turn! Taking you to booking…",
    "state.no_line": "There is no line right now. Taking you to booking…",
    "state.not_on_sale": "This event is not on sale.",
    "state.proving": "Checking this browser before it takes a place in line…",
    "state.unverified":
      "Confirm your e-mail address first: open the link we mailed you, then come back to this page.",
    "verify.resend": "Mail the link again",
    "verify.sent": "Sent: check your mailbox.",
    "trouble.busy": "Many people are asking at once; trying again shortly. Your place is kept.",
    "trouble.connection": "Connection trouble ({message}); trying again. Your place is kept.",
    "announce.place": "You are number {position} in line. Estimated wait: {wait}.",
    "notify.heading": "Tell me when it is my turn",
    "notify.intro":
      "Then you may close this page: we tell you when it is your turn, and keep it for you a few minutes.",
    "notify.push": "Notify me on this device",
    "notify.email": "E-mail me",
    "notify.stop": "Stop telling me",
    "notify.on_push":
      "We will notify this device when it is your turn. You then have {minutes} minutes to come back.",
    "notify.on_email":
      "We will e-mail you when it is your turn. You then have {minutes} minutes to come back.",
    "notify.off": "We will not tell you: keep this page open.",
    "notify.blocked": "Notifications are blocked for this site in this browser. Ask for an e-mail instead.",
    "notify.failed":
      "This browser could not sign up for notifications ({message}). Ask for an e-mail instead.",
  },
  th: {
    "page.title": "ห้องรอคิว · Booking Rush",
    "nav.events": "กิจกรรม",
    "nav.bookings": "การจองของฉัน",
    "nav.language": "ภาษา",
    "room.kicker": "ห้องรอคิว",
    "room.loading": "กำลังโหลด…",
    "room.joining": "กำลังเข้าคิว…",
    "standing.position": "ลำดับของคุณในคิว",
    "standing.ahead": "จำนวนคนข้างหน้าคุณ",
    "standing.eta": "เวลารอโดยประมาณ",
    "standing.waiting": "จำนวนคนในคิว",
    "standing.rate": "จำนวนคนที่ได้เข้าในนาทีที่ผ่านมา",
    "standing.progress": "ความคืบหน้าสู่หัวคิว",
    "standing.hint":
      "เปิดหน้านี้ไว้ หรือขอให้เราแจ้งเมื่อถึงคิว: หากออกจากหน้านี้นานโดยไม่ได้ขอการแจ้งเตือน " +
      "คุณจะเสียที่ในคิว เมื่อถึงคิว หน้านี้จะพาคุณไปจองเอง",
    "standing.leave": "ออกจากคิว",
    "standing.drawn": "จับสลากเมื่อเปิดขาย",
    "eta.paused": "หยุดชั่วคราว: ตอนนี้ยังไม่มีใครได้เข้า ที่ของคุณยังอยู่",
    "eta.not_open_at": "ยังไม่เปิด (เปิดเวลา {time})",
    "eta.not_open": "ยังไม่เปิด",
    "eta.sold_out": "ขายหมดแล้ว",
    "eta.closed": "ห้องปิดอยู่",
    "eta.unknown": "ไม่ทราบ",
    "eta.under_minute": "ไม่ถึงหนึ่งนาที",
    "eta.one_minute": "ประมาณ 1 นาที",
    "eta.minutes": "ประมาณ {n} นาที",
    "eta.range": "ประมาณ {from}–{to} นาที",
    "eta.hours": "{h} ชม. {m}",
    "state.waiting": "คุณอยู่ในคิวแล้ว เปิดหน้านี้ไว้: เมื่อถึงคิว หน้านี้จะพาคุณไปจองเอง",
    "state.waiting_still": "คุณอยู่ในคิวแล้ว ในนาทีที่ผ่านมายังไม่มีใครได้เข้า (การขายอาจหยุดชั่วคราว) ที่ของคุณยังอยู่",
    "state.prequeue_at": "การขายเปิดเวลา {time} ",
    "state.prequeue_soon": "การขายจะเปิดเร็วๆ นี้ ",
    "state.prequeue": "ทุกคนที่เข้าคิวก่อนเปิดขายจะได้ลำดับแบบสุ่มเมื่อเปิดขาย: ไม่ต้องรีบ",
    "state.paused": "การขายหยุดชั่วคราว ที่ของคุณในคิวยังอยู่",
    "state.closed": "ห้องรอคิวปิดอยู่: ตอนนี้ยังไม่มีใครได้เข้า",
    "state.closed_tenant_suspended": "การขายนี้หยุดแล้ว: บัญชีของผู้จัดงานถูกระงับ",
    "state.closed_event_cancelled": "ผู้จัดงานยกเลิกงานนี้แล้ว: ไม่มีการขายอีก และทุกการจองจะได้รับเงินคืนเต็มจำนวน",
    "state.sold_out": "ขายหมดแล้ว: ทุกที่นั่งถูกขายหรือถูกจองไว้ หากมีที่นั่งคืนมา คิวจะเดินต่อ",
    "state.admitted": "ถึงคิวของคุณแล้ว…",
    "state.other": "สถานะคิว: {state}",
    "state.left": "คุณออกจากคิวแล้ว: ที่ของคุณส่งต่อให้คนข้างหลัง",
    "state.your_turn": "ถึงคิวของคุณแล้ว! กำลังพาไปหน้าจอง…",
    "state.no_line": "ตอนนี้ไม่มีคิว กำลังพาไปหน้าจอง…",
    "state.not_on_sale": "กิจกรรมนี้ไม่ได้เปิดขาย",
    "state.proving": "กำลังตรวจสอบเบราว์เซอร์นี้ก่อนเข้าคิว…",
    "state.unverified": "โปรดยืนยันอีเมลของคุณก่อน: เปิดลิงก์ที่เราส่งไปทางอีเมล แล้วกลับมาที่หน้านี้",
    "verify.resend": "ส่งลิงก์อีกครั้ง",
    "verify.sent": "ส่งแล้ว: โปรดตรวจสอบกล่องจดหมาย",
    "trouble.busy": "มีผู้ใช้จำนวนมากในขณะนี้ กำลังลองใหม่ ที่ของคุณยังอยู่",
    "trouble.connection": "การเชื่อมต่อมีปัญหา ({message}) กำลังลองใหม่ ที่ของคุณยังอยู่",
    "announce.place": "คุณอยู่ลำดับที่ {position} ในคิว เวลารอโดยประมาณ: {wait}",
    "notify.heading": "แจ้งฉันเมื่อถึงคิว",
    "notify.intro": "จากนั้นคุณปิดหน้านี้ได้: เราจะแจ้งเมื่อถึงคิวของคุณ และเก็บสิทธิ์ไว้ให้สักครู่",
    "notify.push": "แจ้งเตือนบนอุปกรณ์นี้",
    "notify.email": "ส่งอีเมลถึงฉัน",
    "notify.stop": "หยุดการแจ้งเตือน",
    "notify.on_push": "เราจะแจ้งเตือนอุปกรณ์นี้เมื่อถึงคิวของคุณ จากนั้นคุณมีเวลา {minutes} นาทีในการกลับมา",
    "notify.on_email": "เราจะส่งอีเมลถึงคุณเมื่อถึงคิว จากนั้นคุณมีเวลา {minutes} นาทีในการกลับมา",
    "notify.off": "เราจะไม่แจ้งเตือน: โปรดเปิดหน้านี้ไว้",
    "notify.blocked": "เบราว์เซอร์นี้ปิดกั้นการแจ้งเตือนของเว็บไซต์นี้ ขอรับอีเมลแทนได้",
    "notify.failed": "เบราว์เซอร์นี้สมัครรับการแจ้งเตือนไม่ได้ ({message}) ขอรับอีเมลแทนได้",
  },
};

function chosen() {
  const stored = localStorage.getItem(CHOICE_KEY);
  if (stored in TEXTS) return stored;
  const served = document.documentElement.lang;
  return served in TEXTS ? served : "en";
}

export let lang = chosen();

// The text `key` in the page's language, {names} filled in from `vars`.
export function t(key, vars = {}) {
  const text = TEXTS[lang][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? `${vars[name]}` : `{${name}}`));
}

export function number(value) {
  return new Intl.NumberFormat(lang).format(value);
}

export function dateTime(iso) {
  return new Date(iso).toLocaleString(lang === "th" ? "th-TH" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

// Every element with data-i18n="key" gets that text; the document its language and title.
export function translatePage() {
  document.documentElement.lang = lang;
  document.title = t("page.title");
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
}

// The reader picks a language: kept for next time, and the page said again in it.
export function choose(language, rerender) {
  if (!(language in TEXTS)) return;
  localStorage.setItem(CHOICE_KEY, language);
  lang = language;
  translatePage();
  rerender();
}
