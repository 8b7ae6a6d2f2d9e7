// An action's error, shown right under the control that caused it (the controller's own sentence).
export function ErrorText({ message, testid }: { message: string | null | undefined; testid?: string }) {
  if (!message) return null;
  return (
    <p className="error-text" role="alert" data-testid={testid}>
      {message}
    </p>
  );
}
