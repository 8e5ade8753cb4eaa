import type { ReactNode } from 'react';

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function Problem({ children }: { children: ReactNode }) {
  return (
    <p className="error" role="alert">
      {children}
    </p>
  );
}

/** What this person may not see, said as such: the hub has it, it is not theirs to see. */
export function NotShared({ what }: { what: string }) {
  return <Empty>{what} not shared with you.</Empty>;
}
