/**
 * aws-local-stepfunctions 3 targets Node 22 and uses Promise.withResolvers; Node 20 lacks it.
 * Importing this module adds it where it is missing.
 */
(Promise as { withResolvers?: unknown }).withResolvers ??= function withResolvers<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

export {};
