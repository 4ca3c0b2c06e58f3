import { type FormEvent, useState } from 'react';

interface RenameFormProps {
  /** The current title, the field's starting value. */
  title: string;
  /** Called with the new title when it is not empty and differs; then the form closes. */
  onRename: (title: string) => void;
  /** Closes the form (after saving, or on Escape). */
  onClose: () => void;
}

/** The inline "rename" form of a project or a task row. */
export function RenameForm({ title, onRename, onClose }: RenameFormProps) {
  const [value, setValue] = useState(title);

  const save = (e: FormEvent): void => {
    e.preventDefault();
    const t = value.trim();
    onClose();
    if (t !== '' && t !== title) onRename(t);
  };

  return (
    <form onSubmit={save} className="rename">
      <input
        data-testid="rename-input"
        // biome-ignore lint/a11y/noAutofocus: the field appears because the user asked to rename.
        autoFocus
        value={value}
        onChange={(e) => setValue(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') onClose();
        }}
      />
      <button type="submit" data-testid="rename-save">
        Save
      </button>
    </form>
  );
}
